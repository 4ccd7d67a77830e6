//! `chainrule explain "EXPR" NAME=VALUE...`: build the graph of an
//! expression and show every step of its differentiation: forward values,
//! the chain rule step by step, the gradients checked by finite
//! differences, and optionally the Hessian with the verdict on the point.

mod parse;

use chainrule::prelude::*;
use chainrule::tape::hessian;
use parse::{parse, Expr};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `chainrule explain`.
#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The expression, e.g. "tanh(w*x + b)": numbers, variables, + - * / ^,
    /// unary minus, parentheses, and exp log sqrt abs sin cos tanh sigmoid relu.
    #[arg(allow_hyphen_values = true)]
    expression: String,
    /// The value of every variable, as NAME=VALUE (e.g. x=0.5 w=-1.5).
    values: Vec<String>,
    /// Also write the graph (with gradients) in Graphviz DOT to FILE.
    #[arg(long, value_name = "FILE")]
    dot: Option<PathBuf>,
    /// Also print the Hessian, its eigenvalues and what kind of point this is.
    #[arg(long)]
    hessian: bool,
}

pub fn run(args: &ExplainArgs) -> ExitCode {
    match explain(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("chainrule explain: {message}");
            ExitCode::from(2)
        }
    }
}

/// Parses `NAME=VALUE` arguments.
fn parse_values(values: &[String]) -> Result<BTreeMap<String, f64>, String> {
    let mut out = BTreeMap::new();
    for v in values {
        let (name, value) = v
            .split_once('=')
            .ok_or_else(|| format!("'{v}' is not NAME=VALUE"))?;
        let x: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("the value of {name} ('{value}') is not a number"))?;
        out.insert(name.trim().to_string(), x);
    }
    Ok(out)
}

/// Records `e` on the graph; `vars` maps variable names to their leaves.
fn build(e: &Expr, vars: &BTreeMap<String, Var<f64>>) -> chainrule::tape::Result<Var<f64>> {
    let v = match e {
        Expr::Num(x) => return Ok(Var::constant(Tensor::scalar(*x))),
        Expr::Var(n) => return Ok(vars[n].clone()),
        Expr::Neg(a) => build(a, vars)?.neg(),
        Expr::Bin(op, a, b) => {
            let l = build(a, vars)?;
            match (op, b.as_ref()) {
                ('^', Expr::Num(p)) => l.try_powf(*p)?,
                ('^', _) => l.try_pow(&build(b, vars)?)?,
                ('+', _) => l.try_add(&build(b, vars)?)?,
                ('-', _) => l.try_sub(&build(b, vars)?)?,
                ('*', _) => l.try_mul(&build(b, vars)?)?,
                ('/', _) => l.try_div(&build(b, vars)?)?,
                _ => unreachable!("the parser only produces + - * / ^"),
            }
        }
        Expr::Call(f, a) => {
            let x = build(a, vars)?;
            match f.as_str() {
                "exp" => x.try_exp()?,
                "log" => x.try_log()?,
                "sqrt" => x.try_sqrt()?,
                "abs" => x.try_abs()?,
                "sin" => x.try_sin()?,
                "cos" => x.try_cos()?,
                "tanh" => x.try_tanh()?,
                "sigmoid" => x.try_sigmoid()?,
                "relu" => x.try_relu()?,
                _ => unreachable!("the parser only accepts known functions"),
            }
        }
    };
    Ok(v.named(e.to_string()))
}

/// f at the given point, without recording a graph.
fn evaluate(e: &Expr, names: &[String], at: &[f64]) -> f64 {
    no_grad(|| {
        let vars = names
            .iter()
            .zip(at)
            .map(|(n, &x)| (n.clone(), Var::constant(Tensor::scalar(x))))
            .collect();
        build(e, &vars).map_or(f64::NAN, |v| v.item())
    })
}

fn explain(args: &ExplainArgs) -> Result<String, String> {
    let expr = parse(&args.expression).map_err(|e| e.to_string())?;
    let given = parse_values(&args.values)?;
    let names = expr.variables();
    for n in &names {
        if !given.contains_key(n) {
            return Err(format!(
                "missing value for variable {n} (give it as {n}=VALUE)"
            ));
        }
    }
    if let Some(extra) = given.keys().find(|k| !names.contains(k)) {
        return Err(format!(
            "unknown variable {extra}: the expression uses {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    let point: Vec<f64> = names.iter().map(|n| given[n]).collect();

    let g = Graph::<f64>::new();
    g.retain_grads(true);
    let leaves: BTreeMap<String, Var<f64>> = names
        .iter()
        .zip(&point)
        .map(|(n, &x)| (n.clone(), g.named_leaf(n.clone(), Tensor::scalar(x))))
        .collect();
    let y = build(&expr, &leaves).map_err(|e| e.to_string())?;
    let mut out = String::new();
    let at = names
        .iter()
        .zip(&point)
        .map(|(n, x)| format!("{n} = {x}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "f = {expr}{}{at}\n",
        if at.is_empty() { "" } else { "   at " }
    );
    if !y.requires_grad() {
        let _ = writeln!(
            out,
            "f = {:.6} is a constant: there is nothing to differentiate.",
            y.item()
        );
        return Ok(out);
    }

    let _ = writeln!(out, "Forward pass (nodes in creation order):");
    let trace = g.trace(&y, None).map_err(|e| e.to_string())?;
    y.backward();
    for line in g.summary().lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "\nBackward pass (chain rule, newest node first; each node's ∂f/∂node is the sum of what it received):");
    for line in trace.to_string().lines() {
        let _ = writeln!(out, "  {line}");
    }

    let _ = writeln!(
        out,
        "\nGradients, checked by central differences (h = 1e-6):"
    );
    let _ = writeln!(
        out,
        "  {:<8} {:>18} {:>18} {:>12}",
        "", "backward", "finite diff.", "|difference|"
    );
    let mut gradient = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let analytic = leaves[n].grad().map_or(0.0, |t| t.item());
        let h = 1e-6;
        let (mut up, mut down) = (point.clone(), point.clone());
        up[i] += h;
        down[i] -= h;
        let numeric = (evaluate(&expr, &names, &up) - evaluate(&expr, &names, &down)) / (2.0 * h);
        let diff = (analytic - numeric).abs();
        let ok = diff <= 1e-5 + 1e-3 * numeric.abs();
        let _ = writeln!(
            out,
            "  ∂f/∂{n:<5} {analytic:>18.9} {numeric:>18.9} {diff:>12.2e}  {}",
            if ok { "ok" } else { "MISMATCH" }
        );
        gradient.push(analytic);
    }

    if let Some(path) = &args.dot {
        std::fs::write(path, g.to_dot())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let _ = writeln!(
            out,
            "\nGraph written to {} (render with: dot -Tsvg {} -o graph.svg)",
            path.display(),
            path.display()
        );
    }
    if args.hessian {
        out.push_str(&hessian_report(&expr, &names, &point, &gradient)?);
    }
    Ok(out)
}

/// The Hessian at the point, its eigenvalues, and the lecture notes'
/// classification of the point.
fn hessian_report(
    expr: &Expr,
    names: &[String],
    point: &[f64],
    gradient: &[f64],
) -> Result<String, String> {
    let n = names.len();
    let inputs: Vec<Tensor<f64>> = point.iter().map(|&x| Tensor::scalar(x)).collect();
    let f = |v: &[Var<f64>]| {
        let vars = names.iter().cloned().zip(v.iter().cloned()).collect();
        build(expr, &vars).expect("the expression built once already")
    };
    let blocks = hessian(f, &inputs).map_err(|e| e.to_string())?;
    let h = nalgebra::DMatrix::from_fn(n, n, |i, j| blocks[i][j].item());
    let mut out = String::from("\nHessian ∂²f/∂a∂b:\n");
    let _ = writeln!(
        out,
        "  {:<8}{}",
        "",
        names.iter().map(|n| format!("{n:>14}")).collect::<String>()
    );
    for i in 0..n {
        let _ = writeln!(
            out,
            "  {:<8}{}",
            names[i],
            (0..n)
                .map(|j| format!("{:>14.6}", h[(i, j)]))
                .collect::<String>()
        );
    }
    let mut eig: Vec<f64> = nalgebra::SymmetricEigen::new(h.clone())
        .eigenvalues
        .iter()
        .copied()
        .collect();
    eig.sort_by(f64::total_cmp);
    let _ = writeln!(
        out,
        "Eigenvalues: {}",
        eig.iter()
            .map(|v| format!("{v:.6}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let scale = eig.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let tol = 1e-9 * scale;
    let (pos, neg) = (
        eig.iter().filter(|&&v| v > tol).count(),
        eig.iter().filter(|&&v| v < -tol).count(),
    );
    let curvature = if pos == n {
        "positive definite"
    } else if neg == n {
        "negative definite"
    } else if pos > 0 && neg > 0 {
        "indefinite"
    } else {
        "singular (a zero eigenvalue)"
    };
    let grad_norm = gradient.iter().map(|g| g * g).sum::<f64>().sqrt();
    let verdict = if grad_norm > 1e-9 {
        format!("not a stationary point (|∇f| = {grad_norm:.3e}); the Hessian here is {curvature}")
    } else if pos == n {
        "local minimum (∇f = 0, Hessian positive definite)".to_string()
    } else if neg == n {
        "local maximum (∇f = 0, Hessian negative definite)".to_string()
    } else if pos > 0 && neg > 0 {
        "saddle point (∇f = 0, eigenvalues of both signs)".to_string()
    } else {
        "degenerate (∇f = 0 but an eigenvalue is zero: the second-order test is inconclusive)"
            .to_string()
    };
    let _ = writeln!(out, "Verdict: {verdict}");
    Ok(out)
}
