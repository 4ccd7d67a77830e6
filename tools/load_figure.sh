#!/bin/bash
# The competing-load figure (issue 17): one `bench mlp` epoch on a quiet
# machine and one beside two busy processes (`yes > /dev/null` x2), for
# chainrule and for its PyTorch twin; prints the four figures, the load
# average before each run, and each framework's slowdown (busy / quiet).
# On 2 cores a fair share is 2x; the target for chainrule is at most 2.2x.
#
#   tools/load_figure.sh [BINARY]        # default target/release/chainrule
#
# Environment: PYTHON (a Python with torch; default python3), MAX_LOAD (the
# 1-minute load average to wait for before each quiet run; default 0.3),
# CHAINRULE_DATA (Fashion-MNIST, read by both frameworks).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/release/chainrule}
python=${PYTHON:-python3}
max_load=${MAX_LOAD:-0.3}
if [ ! -x "$binary" ]; then
    echo "$0: $binary is not an executable; build first: cargo build --release" >&2
    exit 2
fi

busy=()
stop_busy() {
    for pid in "${busy[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    busy=()
}
trap stop_busy EXIT
trap 'exit 130' INT TERM

start_busy() {
    for _ in 1 2; do
        yes >/dev/null &
        busy+=("$!")
    done
    sleep 1
}

load() { cut -d' ' -f1 /proc/loadavg; }

wait_quiet() {
    while awk -v max="$max_load" '{exit !($1 > max)}' /proc/loadavg; do
        echo "waiting for load <= $max_load (now $(load))" >&2
        sleep 10
    done
}

# epoch_sec of one run of the command given; exits naming it if absent.
epoch_sec() {
    local line value
    line=$("$@" 2>/dev/null | tail -n 1)
    value=$(grep -o '"epoch_sec": *[0-9.eE+-]*' <<<"$line" | sed 's/.*: *//' || true)
    if [ -z "$value" ]; then
        echo "$0: '$*' printed no epoch_sec: $line" >&2
        exit 1
    fi
    echo "$value"
}

ours=("$binary" bench mlp)
theirs=("$python" tools/torch_reference/bench_torch.py mlp)
echo "cpu:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); $(nproc) cores"

wait_quiet
ours_load=$(load)
ours_quiet=$(epoch_sec "${ours[@]}")
wait_quiet
theirs_load=$(load)
theirs_quiet=$(epoch_sec "${theirs[@]}")

start_busy
ours_busy_load=$(load)
ours_busy=$(epoch_sec "${ours[@]}")
theirs_busy_load=$(load)
theirs_busy=$(epoch_sec "${theirs[@]}")
stop_busy

report() {
    awk -v n="$1" -v q="$2" -v ql="$3" -v b="$4" -v bl="$5" 'BEGIN {
        printf "%-9s mlp epoch_sec quiet %.3f (load %s)  beside 2 busy %.3f (load %s)  slowdown %.2fx\n",
            n, q, ql, b, bl, b / q }'
}
report chainrule "$ours_quiet" "$ours_load" "$ours_busy" "$ours_busy_load"
report pytorch "$theirs_quiet" "$theirs_load" "$theirs_busy" "$theirs_busy_load"
echo "target: chainrule's slowdown at most 2.2x (a fair share of 2 cores is 2x)"
