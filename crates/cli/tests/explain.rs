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

/// `x0+x1+…` over `n` variables and its `xi=1` arguments.
fn sum_of(n: usize) -> (String, Vec<String>) {
    let names: Vec<String> = (0..n).map(|i| format!("x{i}")).collect();
    let values = names.iter().map(|n| format!("{n}=1")).collect();
    (names.join("+"), values)
}

fn explain_owned(expr: &str, values: &[String], extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args: Vec<&str> = vec![expr];
    args.extend(values.iter().map(String::as_str));
    args.extend_from_slice(extra);
    explain(&args)
}

/// The line of the gradient table for variable `name`.
fn gradient_line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(&format!("∂f/∂{name} ")))
        .unwrap_or_else(|| panic!("no gradient line for {name}"))
}

#[test]
fn deep_nesting_of_every_kind_is_explained_without_overflowing_the_stack() {
    let n = 10_000;
    for expr in [
        format!("{}x{}", "(".repeat(n), ")".repeat(n)),
        format!("{}x{}", "sin(".repeat(n), ")".repeat(n)),
        format!("{}x", "-".repeat(5 * n)),
        vec!["x"; n].join("^"),
    ] {
        let (code, out, err) = explain(&[&expr, "x=0.5"]);
        assert_eq!(code, Some(0), "{}…: {err}", &expr[..20]);
        let line = gradient_line(&out, "x");
        assert!(line.ends_with("ok"), "{}…: {line}", &expr[..20]);
    }
    // x with an even number of minus signs: f = x, ∂f/∂x = 1.
    let (_, out, _) = explain(&[&format!("{}x", "-".repeat(5 * n)), "x=0.5"]);
    assert!(
        gradient_line(&out, "x").contains(" 1.000000000 "),
        "{}",
        gradient_line(&out, "x")
    );
    // exp(exp(…(x)…)) overflows to ∞: explained, the row marked, no crash.
    let nested_exp = format!("{}x{}", "exp(".repeat(n), ")".repeat(n));
    let (code, out, err) = explain(&[&nested_exp, "x=0.5"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        gradient_line(&out, "x").ends_with("not finite"),
        "{}",
        gradient_line(&out, "x")
    );
    assert!(
        out.contains("Note: f = inf here"),
        "{}",
        &out[out.len() - 500..]
    );
}

#[test]
fn a_sum_of_ten_thousand_variables_has_every_gradient_one() {
    let (expr, values) = sum_of(10_000);
    let (code, out, err) = explain_owned(&expr, &values, &[]);
    assert_eq!(code, Some(0), "{err}");
    for i in [0, 1, 77, 5_000, 9_999] {
        let line = gradient_line(&out, &format!("x{i}"));
        assert!(line.contains(" 1.000000000 "), "{line}");
    }
    let ones = out
        .lines()
        .filter(|l| l.trim_start().starts_with("∂f/∂x") && l.contains(" 1.000000000 "))
        .count();
    assert_eq!(ones, 10_000);
    // Gradients beyond the per-variable budget are checked together.
    let together = out
        .lines()
        .find(|l| l.trim_start().starts_with("∇f·d"))
        .unwrap();
    assert!(together.ends_with("ok"), "{together}");
    assert!(!out.contains("MISMATCH"));
    // The forward pass lists 10,000 leaves and 9,999 additions.
    assert_eq!(
        out.lines().filter(|l| l.contains(" add ")).count(),
        9_999 * 2
    );
}

#[test]
fn non_finite_values_give_an_undefined_verdict() {
    for (expr, values, reason) in [
        (
            "x*y",
            &["x=nan", "y=nan"][..],
            "the point has non-finite coordinates (x = NaN, y = NaN)",
        ),
        (
            "x^2 + y^2",
            &["x=inf", "y=0"][..],
            "the point has non-finite coordinates (x = inf)",
        ),
        (
            "log(x) + y^2",
            &["x=-1", "y=0"][..],
            "f = NaN at this point",
        ),
        (
            "sqrt(x) + y",
            &["x=0", "y=1"][..],
            "the gradient has non-finite entries (∂f/∂x = inf)",
        ),
        (
            "x*y + 1/x",
            &["x=1e-200", "y=2"][..],
            "the gradient has non-finite entries (∂f/∂x = -inf)",
        ),
    ] {
        let v = verdict(expr, values);
        assert!(v.starts_with("Verdict: undefined: "), "{expr}: {v}");
        assert!(v.contains(reason), "{expr}: {v}");
    }
    // Without --hessian the gradient rows say so instead of MISMATCH.
    let (code, out, _) = explain(&["x*y", "x=nan", "y=1"]);
    assert_eq!(code, Some(0));
    assert!(gradient_line(&out, "y").ends_with("not finite"), "{out}");
    assert!(!out.contains("MISMATCH"), "{out}");
}

#[test]
fn the_hessian_of_a_hessian_only_expression_with_huge_entries_is_classified() {
    // Entries near f64's maximum: the eigenvalues are computed on a scaled
    // copy, so they come out finite and of the right signs.
    let (code, out, err) = explain(&["1e300*x^2 - 1e300*y^2", "x=0", "y=0", "--hessian"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Verdict: saddle point"), "{out}");
    assert!(out.contains("Eigenvalues: -2000000000000000"), "{out}");
}

#[test]
fn every_kind_of_bad_input_exits_two_with_one_line() {
    let dir = std::env::temp_dir().join(format!("chainrule-explain-bad-{}", std::process::id()));
    let unwritable = dir.join("no-such-directory").join("g.dot");
    let too_many = sum_of(101);
    let huge = "9".repeat(400);
    for (args, want) in [
        (
            vec![""],
            "syntax error at column 1: unexpected end of expression",
        ),
        (
            vec!["   "],
            "syntax error at column 4: unexpected end of expression",
        ),
        (
            vec!["foo(x)", "x=1"],
            "syntax error at column 1: unknown function 'foo'",
        ),
        (vec!["(x", "x=1"], "syntax error at column 3: expected ')'"),
        (
            vec!["x)", "x=1"],
            "syntax error at column 2: unexpected text after the expression",
        ),
        (
            vec!["x + 1.2.3", "x=1"],
            "syntax error at column 5: bad number '1.2.3': not a number",
        ),
        (
            vec!["x + 1e400", "x=1"],
            "syntax error at column 5: bad number '1e400': too large for f64 (it overflows to infinity",
        ),
        (vec![&huge], "syntax error at column 1: bad number '999"),
        (
            vec!["√x", "x=1"],
            "syntax error at column 1: unexpected character '√'",
        ),
        (
            vec!["x 🙂", "x=1"],
            "syntax error at column 3: unexpected character '🙂'",
        ),
        (
            vec!["x", "x=1e400"],
            "the value of x ('1e400') is too large for f64 (it overflows to infinity; the largest is 1.7976931348623157e308)",
        ),
        (
            vec!["x", "x=1e-400"],
            "the value of x ('1e-400') is too small for f64 (it underflows to 0; the smallest is 5e-324)",
        ),
        (vec!["x", "x="], "the value of x ('') is not a number"),
        (
            vec!["x + y", "x=1", "x=2", "y=3"],
            "x is given more than once",
        ),
        (
            vec!["x", "=1", "x=1"],
            "'=1' is not NAME=VALUE (the name is empty)",
        ),
        (
            vec![&too_many.0, "--hessian"],
            "--hessian takes at most 100 variables (the expression has 101)",
        ),
        (
            vec!["x", "x=1", "--dot", unwritable.to_str().unwrap()],
            "--dot: cannot write ",
        ),
    ] {
        let mut args = args;
        if args[0] == too_many.0 {
            args.extend(too_many.1.iter().map(String::as_str));
        }
        let (code, out, err) = explain(&args);
        assert_eq!(code, Some(2), "{:?}: {err}", &args[0]);
        assert!(out.is_empty(), "{out}");
        assert!(
            err.starts_with(&format!("chainrule explain: {want}")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn unicode_names_and_explicit_infinities_are_accepted() {
    let (code, out, err) = explain(&["αβ*x₁ + exp(αβ)", "αβ=0", "x₁=2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(gradient_line(&out, "αβ").contains(" 3.000000000 "), "{out}"); // x₁ + e^0
    let (code, out, _) = explain(&["x", "x=-inf"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("f = x   at x = -inf"), "{out}");
}

#[test]
fn a_long_variable_name_does_not_widen_every_row() {
    // 70,000 characters: above the formatter's width limit of 65,535.
    let long = "v".repeat(70_000);
    let expr = format!("{long} + y*y + y");
    let (code, out, err) = explain(&[&expr, &format!("{long}=1"), "y=2"]);
    assert_eq!(code, Some(0), "{err}");
    let longest_y_row = out
        .lines()
        .filter(|l| !l.contains(&long))
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(
        longest_y_row < 300,
        "rows padded to the long name: {longest_y_row}"
    );
}

mod library {
    use chainrule_cli::explain::{explain_bytes, ExplainError};

    #[test]
    fn explain_bytes_reads_the_expression_then_the_words() {
        let text = explain_bytes(b"x*y\nx=2 y=3 --hessian --dot").unwrap();
        assert!(text.contains("Verdict: not a stationary point"), "{text}");
        assert!(text.contains("digraph chainrule {"), "{text}");
        assert_eq!(
            explain_bytes(b"x\xff"),
            Err(ExplainError(
                "the input is not UTF-8: invalid utf-8 sequence of 1 bytes from index 1".into()
            ))
        );
        assert!(explain_bytes(b"").unwrap_err().0.contains("unexpected end"));
    }

    #[test]
    fn explain_bytes_never_panics_on_mangled_inputs() {
        // Every prefix of a few inputs and single-byte edits of them.
        let seeds: [&[u8]; 4] = [
            b"tanh(w*x + b)^-2 / exp(-(x - 1.25))\nx=0.5 w=-1.5 b=0.2 --hessian --dot",
            b"sigmoid(a)*relu(a)^a - abs(log(a))\na=nan --hessian",
            b"((((x))))^2^-x\nx=1e308 --hessian",
            b"sqrt(x)/0 + 1e-320*x\nx=0 --hessian",
        ];
        let alphabet = b"x()^-+*/e.0 \n=\xce";
        for seed in seeds {
            for end in 0..=seed.len() {
                let _ = explain_bytes(&seed[..end]);
            }
            for (i, &b) in alphabet.iter().enumerate() {
                let mut edited = seed.to_vec();
                edited[(i * 7) % seed.len()] = b;
                let _ = explain_bytes(&edited);
            }
        }
    }
}
