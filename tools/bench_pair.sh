#!/bin/bash
# Paired `chainrule bench` runs: waits for a quiet machine (load average
# under 0.3), prints the load, CPU model and SIMD flags, then alternates the
# given binaries N times and prints each one's median of the chosen field.
#
#   tools/bench_pair.sh N WORKLOAD FIELD BINARY...
#   tools/bench_pair.sh 41 tiny ns_per_op /tmp/chainrule-base target/release/chainrule
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 N WORKLOAD FIELD BINARY..." >&2
    exit 2
fi
runs=$1 workload=$2 field=$3
shift 3
while awk '{exit !($1 >= 0.3)}' /proc/loadavg; do sleep 10; done
echo "load $(cut -d' ' -f1-3 /proc/loadavg);$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2);" \
    "flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -ow 'avx2\|avx512f\|fma' | sort -u | tr '\n' ' ')"
declare -A values
for _ in $(seq "$runs"); do
    for binary in "$@"; do
        value=$("$binary" bench "$workload" | grep -o "\"$field\":[0-9.e+-]*" | cut -d: -f2 || true)
        if [ -z "$value" ]; then
            echo "$binary bench $workload printed no \"$field\"" >&2
            exit 1
        fi
        values[$binary]="${values[$binary]:-} $value"
    done
done
for binary in "$@"; do
    median=$(echo ${values[$binary]} | tr ' ' '\n' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
    echo "$binary median $median of$(echo ${values[$binary]} | wc -w):${values[$binary]}"
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
