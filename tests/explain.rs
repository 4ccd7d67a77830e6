//! `chainrule explain`: the walkthrough, the Hessian verdicts, and bad input.

use std::process::Command;

fn explain(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .arg("explain")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn explains_tanh_of_an_affine_function_step_by_step() {
    let (code, out, _) = explain(&["tanh(w*x + b)", "x=0.5", "w=-1.5", "b=0.2"]);
    assert_eq!(code, Some(0), "{out}");
    let t = (-0.55f64).tanh();
    let d = 1.0 - t * t;
    // Forward values in order, the chain-rule steps, and checked gradients.
    assert!(out.contains(&format!("{t:.6}")), "{out}");
    assert!(
        out.contains(&format!("1 − tanh²(x) = 1 − y² = {d:.6}")),
        "{out}"
    );
    for (name, want) in [("w", d * 0.5), ("x", d * -1.5), ("b", d)] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("∂f/∂{name} ")))
            .unwrap();
        assert!(
            line.contains(&format!("{want:.9}")) && line.ends_with("ok"),
            "{line}"
        );
    }
}

#[test]
fn a_value_used_twice_shows_its_gradient_as_a_sum() {
    let (code, out, _) = explain(&["x*x + x", "x=3"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("7.000000 = "), "{out}"); // ∂f/∂x = 3 + 3 + 1
}

fn verdict(expr: &str, values: &[&str]) -> String {
    let mut args = vec![expr];
    args.extend_from_slice(values);
    args.push("--hessian");
    let (code, out, err) = explain(&args);
    assert_eq!(code, Some(0), "{err}");
    out.lines()
        .find(|l| l.starts_with("Verdict:"))
        .unwrap()
        .to_string()
}

#[test]
fn the_hessian_classifies_stationary_points() {
    assert!(verdict("x^2 + y^2", &["x=0", "y=0"]).contains("local minimum"));
    assert!(verdict("-x^2 - y^2", &["x=0", "y=0"]).contains("local maximum"));
    assert!(verdict("x^2 - y^2", &["x=0", "y=0"]).contains("saddle point"));
    assert!(verdict("x^4 + y^2", &["x=0", "y=0"]).contains("degenerate"));
    assert!(verdict("x^2 + y^2", &["x=1", "y=0"]).contains("not a stationary point"));
    let (_, out, _) = explain(&["x^2 - 3*y^2", "x=0", "y=0", "--hessian"]);
    assert!(out.contains("Eigenvalues: -6.000000, 2.000000"), "{out}");
}

#[test]
fn bad_input_gets_one_line_and_exit_code_two() {
    for (args, want) in [
        (
            vec!["x + z", "x=1"],
            "chainrule explain: missing value for variable z (give it as z=VALUE)",
        ),
        (
            vec!["x + 1", "x=1", "q=2"],
            "chainrule explain: unknown variable q: the expression uses x",
        ),
        (
            vec!["tanh(x", "x=1"],
            "chainrule explain: syntax error at column 7: expected ')'",
        ),
        (
            vec!["x", "x=abc"],
            "chainrule explain: the value of x ('abc') is not a number",
        ),
        (vec!["x", "x"], "chainrule explain: 'x' is not NAME=VALUE"),
    ] {
        let (code, out, err) = explain(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(out.is_empty());
        assert_eq!(err.trim_end(), want);
        assert_eq!(err.lines().count(), 1);
    }
}

#[test]
fn dot_option_writes_a_graph_graphviz_accepts() {
    let dir = std::env::temp_dir().join(format!("chainrule-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("g.dot");
    let (code, _, _) = explain(&[
        "sigmoid(a)*exp(-a)",
        "a=0.3",
        "--dot",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0));
    let dot = std::fs::read_to_string(&path).unwrap();
    assert!(
        dot.starts_with("digraph chainrule {") && dot.contains("{ a | data 0.3000 | grad"),
        "{dot}"
    );
    if let Ok(o) = Command::new("dot").arg("-Tsvg").arg(&path).output() {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
