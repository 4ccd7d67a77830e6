//! Graph summary, DOT export and backward trace.

use chainrule_ops::VarOps;
use chainrule_tape::{Graph, Tensor, Var};

/// y = tanh(w·x + b) at x = 0.5, w = −1.5, b = 0.2: the graph and [x, w, b, y].
fn scalar_graph() -> (Graph<f64>, [Var<f64>; 4]) {
    let g = Graph::new();
    let x = g.named_leaf("x", Tensor::scalar(0.5));
    let w = g.named_leaf("w", Tensor::scalar(-1.5));
    let b = g.named_leaf("b", Tensor::scalar(0.2));
    let y = (&(&w * &x) + &b).tanh().named("y");
    (g, [x, w, b, y])
}

#[test]
fn summary_lists_nodes_in_creation_order_with_values_and_grads() {
    let (g, [x, _w, _b, y]) = scalar_graph();
    g.retain_grads(true);
    y.backward();
    let s = g.summary();
    let rows: Vec<&str> = s.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{s}");
    let ops: Vec<&str> = rows
        .iter()
        .map(|r| {
            r.split_whitespace()
                .find(|t| ["leaf", "mul", "add", "tanh"].contains(t))
                .unwrap()
        })
        .collect();
    assert_eq!(ops, ["leaf", "leaf", "leaf", "mul", "add", "tanh"], "{s}");
    let t = (-0.55f64).tanh();
    assert!(rows[5].contains(&format!("{t:.6}")), "{s}");
    // ∂y/∂x = w·(1 − t²), shown in x's row; y's own gradient is 1.
    let dx = -1.5 * (1.0 - t * t);
    assert!(rows[0].contains(&format!("{dx:.6}")), "{s}");
    assert_eq!(x.grad().unwrap().item(), dx);
    assert!(rows[5].ends_with("1.000000"), "{s}");
}

#[test]
fn dot_export_has_one_edge_per_argument_slot() {
    let g = Graph::new();
    let a = g.named_leaf("a", Tensor::scalar(2.0f64));
    let s = &a + &a;
    let dot = g.to_dot();
    let edges: Vec<&str> = dot.lines().filter(|l| l.contains("v0 -> op1")).collect();
    assert_eq!(edges.len(), 2, "{dot}");
    assert!(
        dot.contains("label=\"{ a | data 2.0000 | grad }\""),
        "{dot}"
    );
    s.backward();
    assert!(g.to_dot().contains("grad 2.0000"), "{}", g.to_dot());
}

#[test]
fn graphviz_accepts_the_dot_output() {
    let (g, [_x, _w, _b, y]) = scalar_graph();
    let m = Graph::new();
    let big = m
        .leaf(Tensor::<f64>::ones([2, 3]))
        .matmul(&m.input(Tensor::ones([3, 4])));
    let _ = big.sum_all();
    y.backward();
    let Ok(status) = std::process::Command::new("dot").arg("-V").output() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs graphviz; `dot` must be present"
        );
        eprintln!("graphviz not installed: skipping the dot -Tsvg check");
        return;
    };
    assert!(status.status.success());
    for text in [g.to_dot(), m.to_dot()] {
        let mut child = std::process::Command::new("dot")
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "dot rejected:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    }
}

#[test]
fn trace_contributions_sum_to_each_nodes_gradient() {
    // y = x·x + x: x receives three contributions (x, x from mul, 1 from add).
    let g = Graph::new();
    let x = g.named_leaf("x", Tensor::scalar(3.0f64));
    let y = (&(&x * &x) + &x).named("y");
    let trace = g.trace(&y, None).unwrap();
    let received = trace.received();
    for step in &trace.steps {
        if let Some(parts) = received.get(&step.node) {
            let sum: f64 = parts.iter().map(|(_, t)| t.item()).sum();
            assert_eq!(sum, step.upstream.item(), "node {}", step.label);
        }
    }
    assert_eq!(trace.gradient_of(0).unwrap().item(), 7.0); // 2x + 1
    let text = trace.to_string();
    assert!(text.contains("7.000000 = "), "{text}");
    // The trace did not touch stored gradients or free the graph.
    assert!(x.grad().is_none());
    y.backward();
    assert_eq!(x.grad().unwrap().item(), 7.0);
}

#[test]
fn trace_shows_local_derivatives_as_formula_and_number() {
    let (g, [_x, _w, _b, y]) = scalar_graph();
    let trace = g.trace(&y, None).unwrap();
    let first = &trace.steps[0];
    assert_eq!(first.op, "tanh");
    let c = &first.contributions[0];
    let t = (-0.55f64).tanh();
    assert_eq!(c.formula.as_deref(), Some("1 − tanh²(x) = 1 − y²"));
    assert!((c.local.unwrap() - (1.0 - t * t)).abs() < 1e-15);
    let mul = trace.steps.iter().find(|s| s.op == "mul").unwrap();
    let to_x = mul
        .contributions
        .iter()
        .find(|c| c.to_label == "x")
        .unwrap();
    assert_eq!(to_x.formula.as_deref(), Some("a"));
    assert!((to_x.local.unwrap() - (-1.5)).abs() < 1e-15); // ∂(w·x)/∂x = w
}

#[test]
fn a_very_long_name_overflows_its_column_instead_of_widening_every_row() {
    // 70,000 characters: a padding width that large is out of range for the
    // formatter, and padding 1,000 rows to it would be 70 MB of spaces.
    let g = Graph::new();
    let long = "n".repeat(70_000);
    let x = g.named_leaf(long.as_str(), Tensor::scalar(1.0f64));
    let mut y = x.clone();
    for _ in 0..1_000 {
        y = &y * &x;
    }
    let y = y.named("y");
    g.retain_grads(true);
    let trace = g.trace(&y, None).unwrap();
    y.backward();
    for text in [g.summary(), trace.to_string()] {
        let widest_other = text
            .lines()
            .filter(|l| !l.contains(&long))
            .map(|l| l.chars().count())
            .max()
            .unwrap();
        assert!(
            widest_other < 200,
            "rows padded to the long name: {widest_other}"
        );
    }
    assert_eq!(x.grad().unwrap().item(), 1001.0); // d(x^1001)/dx at 1
    assert!(g.to_dot().contains(&long));
}

#[test]
fn a_ten_thousand_node_graph_is_summarized_traced_and_exported_in_full() {
    let n = 5_000;
    let g = Graph::new();
    let xs: Vec<Var<f64>> = (0..n)
        .map(|i| g.named_leaf(format!("x{i}"), Tensor::scalar(i as f64)))
        .collect();
    let mut y = xs[0].clone();
    for x in &xs[1..] {
        y = &y + x;
    }
    g.retain_grads(true);
    let trace = g.trace(&y, None).unwrap();
    y.backward();
    // 5,000 leaves and 4,999 additions: a header and one row per node.
    assert_eq!(g.summary().lines().count(), 1 + 2 * n - 1);
    assert_eq!(trace.steps.len(), 2 * n - 1);
    // The trace: a header, two rows per addition (one per input), one per leaf.
    assert_eq!(trace.to_string().lines().count(), 1 + 2 * (n - 1) + n);
    let dot = g.to_dot();
    assert_eq!(dot.matches(" -> op").count(), 2 * (n - 1));
    assert_eq!(dot.matches("grad 1.0000").count(), 2 * n - 1);
    assert!(xs.iter().all(|x| x.grad().unwrap().item() == 1.0));
    assert_eq!(y.item(), (n * (n - 1) / 2) as f64);
}
