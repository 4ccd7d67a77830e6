//! `chainrule explain "EXPR" NAME=VALUE...`: build the graph of an
//! expression and show every step of its differentiation: forward values,
//! the chain rule step by step, the gradients checked by finite
//! differences, and optionally the Hessian with the verdict on the point.
//!
//! Every stage is linear (or n log n) in the size of the expression and
//! nothing recurses on its nesting depth. Bad input is an [`ExplainError`]
//! (exit code 2 on the command line); a valid expression that evaluates to
//! NaN or ±∞ at a valid point is explained honestly (rows marked
//! `not finite`, a verdict of `undefined`) and exits 0.
//!
//! [`explain_bytes`] is the panic-free entry point for fuzzing.

mod parse;

pub use parse::{parse, parse_number, BinOp, Expr, Func, Node, ParseError, FUNCTIONS};

use crate::prelude::*;
use crate::tape::functional::eigh;
use crate::tape::hessian;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Sub-expressions printed longer than this are not used as node names (the
/// node shows as `#id`); naming every node by its full text made the names
/// of an n-term sum O(n²) characters in total.
pub const NAME_LIMIT: usize = 40;

/// `--hessian` takes at most this many variables: the Hessian has n² entries
/// and its eigenvalues cost n³.
pub const MAX_HESSIAN_VARIABLES: usize = 100;

/// Evaluations × nodes spent on checking gradients one variable at a time;
/// beyond it the remaining variables are checked together along one
/// direction, so the check stays linear in the size of the expression.
const FINITE_DIFFERENCE_BUDGET: usize = 4_000_000;

/// The step of the central differences.
const H: f64 = 1e-6;

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

/// Runs `chainrule explain`: the walkthrough on stdout, or one line on
/// stderr and exit code 2 for bad input.
pub fn run(args: &ExplainArgs) -> ExitCode {
    let request = Request {
        expression: &args.expression,
        values: &args.values,
        hessian: args.hessian,
        dot: args.dot.is_some(),
    };
    let result = explain(&request).and_then(|e| {
        let mut text = e.text;
        if let (Some(path), Some(dot)) = (&args.dot, e.dot) {
            std::fs::write(path, dot).map_err(|err| {
                ExplainError(format!("--dot: cannot write {}: {err}", path.display()))
            })?;
            let _ = writeln!(
                text,
                "\nGraph written to {} (render with: dot -Tsvg {} -o graph.svg)",
                path.display(),
                path.display()
            );
        }
        Ok(text)
    });
    match result {
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

/// Bad input to `explain`: a syntax error, a missing, unknown, repeated or
/// malformed value, or a request beyond a stated limit.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainError(pub String);

impl fmt::Display for ExplainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExplainError {}

impl From<String> for ExplainError {
    fn from(message: String) -> Self {
        ExplainError(message)
    }
}

/// What to explain.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The expression.
    pub expression: &'a str,
    /// The variables' values as `NAME=VALUE`.
    pub values: &'a [String],
    /// Also the Hessian, its eigenvalues and the verdict on the point.
    pub hessian: bool,
    /// Also the graph in Graphviz DOT.
    pub dot: bool,
}

/// The walkthrough, and the DOT text if it was asked for.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// What `chainrule explain` prints.
    pub text: String,
    /// The graph with gradients in Graphviz DOT.
    pub dot: Option<String>,
}

/// Explains an expression given as bytes, for fuzzing: never panics.
///
/// The input is UTF-8; its first line is the expression and every further
/// whitespace-separated word is `NAME=VALUE`, `--hessian` or `--dot` (the DOT
/// text is appended to the result instead of written to a file).
pub fn explain_bytes(input: &[u8]) -> Result<String, ExplainError> {
    let text = std::str::from_utf8(input)
        .map_err(|e| ExplainError(format!("the input is not UTF-8: {e}")))?;
    let (expression, rest) = text.split_once('\n').unwrap_or((text, ""));
    let (mut hessian, mut dot) = (false, false);
    let mut values = Vec::new();
    for word in rest.split_whitespace() {
        match word {
            "--hessian" => hessian = true,
            "--dot" => dot = true,
            _ => values.push(word.to_string()),
        }
    }
    let request = Request {
        expression,
        values: &values,
        hessian,
        dot,
    };
    let e = explain(&request)?;
    Ok(e.text + e.dot.as_deref().unwrap_or(""))
}

/// Parses `NAME=VALUE` arguments into one value per variable of `expr`.
fn bind(expr: &Expr, values: &[String]) -> Result<Vec<f64>, ExplainError> {
    let names = expr.variables();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut point: Vec<Option<f64>> = vec![None; names.len()];
    for v in values {
        let (name, value) = v
            .split_once('=')
            .ok_or_else(|| format!("'{v}' is not NAME=VALUE"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("'{v}' is not NAME=VALUE (the name is empty)").into());
        }
        let x = parse_number(value.trim())
            .map_err(|e| format!("the value of {name} ('{value}') is {e}"))?;
        let Some(&i) = index.get(name) else {
            let uses = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            return Err(format!("unknown variable {name}: the expression uses {uses}").into());
        };
        if point[i].replace(x).is_some() {
            return Err(format!("{name} is given more than once").into());
        }
    }
    names
        .iter()
        .zip(point)
        .map(|(n, x)| {
            x.ok_or_else(|| format!("missing value for variable {n} (give it as {n}=VALUE)").into())
        })
        .collect()
}

/// Parses, binds, builds the graph and writes the walkthrough.
pub fn explain(request: &Request) -> Result<Explanation, ExplainError> {
    let expr = parse(request.expression).map_err(|e| e.to_string())?;
    let point = bind(&expr, request.values)?;
    let names = expr.variables();
    if request.hessian && names.len() > MAX_HESSIAN_VARIABLES {
        return Err(format!(
            "--hessian takes at most {MAX_HESSIAN_VARIABLES} variables (the expression has {})",
            names.len()
        )
        .into());
    }
    let g = Graph::<f64>::new();
    g.retain_grads(true);
    let leaves: Vec<Var<f64>> = names
        .iter()
        .zip(&point)
        .map(|(n, &x)| g.named_leaf(n.clone(), Tensor::scalar(x)))
        .collect();
    let y = build(&expr, &leaves, true).map_err(|e| e.to_string())?;
    let mut out = String::new();
    write_heading(&mut out, &expr, &point);
    if !y.requires_grad() {
        let _ = writeln!(
            out,
            "f = {:.6} is a constant: there is nothing to differentiate.",
            y.item()
        );
        return Ok(Explanation {
            text: out,
            dot: request.dot.then(|| g.to_dot()),
        });
    }
    write_passes(&mut out, &g, &y)?;
    let gradient: Vec<f64> = leaves
        .iter()
        .map(|l| l.grad().map_or(0.0, |t| t.item()))
        .collect();
    write_gradients(&mut out, &expr, &point, &gradient);
    let value = y.item();
    if !value.is_finite() {
        let _ = writeln!(
            out,
            "\nNote: f = {value} here, so its derivatives are not meaningful at this point."
        );
    }
    let dot = request.dot.then(|| g.to_dot());
    if request.hessian {
        out.push_str(&hessian_report(&expr, &point, value, &gradient)?);
    }
    Ok(Explanation { text: out, dot })
}

/// Records `expr` on the graph in one pass over its nodes; `leaves` holds
/// one leaf per variable. With `named`, op nodes whose sub-expression prints
/// in at most [`NAME_LIMIT`] characters are named by it.
fn build(expr: &Expr, leaves: &[Var<f64>], named: bool) -> crate::tape::Result<Var<f64>> {
    let nodes = expr.nodes();
    let lengths = if named {
        expr.text_lengths()
    } else {
        Vec::new()
    };
    let mut values: Vec<Var<f64>> = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        let v = match *node {
            Node::Num(x) => Var::constant(Tensor::scalar(x)),
            Node::Var(k) => leaves[k].clone(),
            Node::Neg(a) => values[a].neg(),
            Node::Bin(BinOp::Pow, a, b) => match nodes[b] {
                Node::Num(p) => values[a].try_powf(p)?,
                _ => values[a].try_pow(&values[b])?,
            },
            Node::Bin(op, a, b) => {
                let (l, r) = (&values[a], &values[b]);
                match op {
                    BinOp::Add => l.try_add(r)?,
                    BinOp::Sub => l.try_sub(r)?,
                    BinOp::Mul => l.try_mul(r)?,
                    BinOp::Div => l.try_div(r)?,
                    BinOp::Pow => l.try_pow(r)?,
                }
            }
            Node::Call(f, a) => call(f, &values[a])?,
        };
        let name =
            !matches!(node, Node::Var(_)) && lengths.get(i).is_some_and(|&l| l <= NAME_LIMIT);
        values.push(if name { v.named(expr.text_of(i)) } else { v });
    }
    values.pop().ok_or_else(|| {
        crate::tape::Error::new(
            "explain",
            crate::tape::ErrorKind::Argument,
            "empty expression",
        )
    })
}

/// `f(x)` on the graph.
fn call(f: Func, x: &Var<f64>) -> crate::tape::Result<Var<f64>> {
    match f {
        Func::Exp => x.try_exp(),
        Func::Log => x.try_log(),
        Func::Sqrt => x.try_sqrt(),
        Func::Abs => x.try_abs(),
        Func::Sin => x.try_sin(),
        Func::Cos => x.try_cos(),
        Func::Tanh => x.try_tanh(),
        Func::Sigmoid => x.try_sigmoid(),
        Func::Relu => x.try_relu(),
    }
}

/// `f = EXPR   at x = 1, y = 2`.
fn write_heading(out: &mut String, expr: &Expr, point: &[f64]) {
    let _ = write!(out, "f = {expr}");
    for (i, (n, x)) in expr.variables().iter().zip(point).enumerate() {
        let _ = write!(out, "{}{n} = {x}", if i == 0 { "   at " } else { ", " });
    }
    out.push_str("\n\n");
}

/// The forward pass (the graph's summary) and the backward trace; runs backward.
fn write_passes(out: &mut String, g: &Graph<f64>, y: &Var<f64>) -> Result<(), ExplainError> {
    let _ = writeln!(out, "Forward pass (nodes in creation order):");
    let trace = g.trace(y, None).map_err(|e| e.to_string())?;
    y.try_backward(BackwardOptions::default())
        .map_err(|e| e.to_string())?;
    for line in g.summary().lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "\nBackward pass (chain rule, newest node first; each node's ∂f/∂node is the sum of what it received):");
    for line in trace.to_string().lines() {
        let _ = writeln!(out, "  {line}");
    }
    Ok(())
}

/// How a backward gradient compares with its finite-difference estimate.
fn status(analytic: f64, numeric: f64) -> &'static str {
    if !analytic.is_finite() || !numeric.is_finite() {
        "not finite"
    } else if (analytic - numeric).abs() <= 1e-5 + 1e-3 * numeric.abs() {
        // Central differences with h = 1e-6 are accurate to about 1e-9 (the
        // O(h²) term) plus rounding of f over 2h (about 1e-10·|f|): a
        // relative 1e-3 or absolute 1e-5 slack flags wrong derivatives only.
        "ok"
    } else {
        "MISMATCH"
    }
}

/// (f(x + h·d) − f(x − h·d)) / 2h.
fn central_difference(expr: &Expr, point: &[f64], direction: &[(usize, f64)]) -> f64 {
    let (mut up, mut down) = (point.to_vec(), point.to_vec());
    for &(i, d) in direction {
        up[i] += H * d;
        down[i] -= H * d;
    }
    (expr.eval(&up) - expr.eval(&down)) / (2.0 * H)
}

/// The gradient table: each variable's backward gradient against central
/// differences, one variable at a time while the budget lasts and the rest
/// together along a direction of random signs.
fn write_gradients(out: &mut String, expr: &Expr, point: &[f64], gradient: &[f64]) {
    let names = expr.variables();
    let _ = writeln!(
        out,
        "\nGradients, checked by central differences (h = {H:e}):"
    );
    let _ = writeln!(
        out,
        "  {:<8} {:>18} {:>18} {:>12}",
        "", "backward", "finite diff.", "|difference|"
    );
    let cost = 2 * expr.nodes().len().max(1);
    let individually = (FINITE_DIFFERENCE_BUDGET / cost).min(names.len());
    for (i, (n, &analytic)) in names.iter().zip(gradient).enumerate() {
        if i < individually {
            let numeric = central_difference(expr, point, &[(i, 1.0)]);
            let diff = (analytic - numeric).abs();
            let status = status(analytic, numeric);
            let _ = writeln!(
                out,
                "  ∂f/∂{n:<5} {analytic:>18.9} {numeric:>18.9} {diff:>12.2e}  {status}"
            );
        } else {
            let _ = writeln!(
                out,
                "  ∂f/∂{n:<5} {analytic:>18.9} {:>18} {:>12}",
                "(below)", ""
            );
        }
    }
    let rest = names.len() - individually;
    if rest > 0 {
        let direction = random_signs(individually..names.len());
        let analytic: f64 = direction.iter().map(|&(i, d)| gradient[i] * d).sum();
        let numeric = central_difference(expr, point, &direction);
        let diff = (analytic - numeric).abs();
        let status = status(analytic, numeric);
        let _ = writeln!(
            out,
            "  The other {rest} gradients, checked together along a unit direction d of random signs \
             (one at a time would take {} more evaluations of f):\n  {:<8} {analytic:>18.9} {numeric:>18.9} {diff:>12.2e}  {status}",
            2 * rest,
            "∇f·d"
        );
    }
}

/// A unit vector with entries ±1/√m on `range` (m its length), the signs
/// from a fixed xorshift sequence.
fn random_signs(range: std::ops::Range<usize>) -> Vec<(usize, f64)> {
    let scale = 1.0 / (range.len() as f64).sqrt();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    range
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (i, if state & 1 == 0 { scale } else { -scale })
        })
        .collect()
}

/// The Hessian at the point, its eigenvalues, and the lecture notes'
/// classification of the point (`undefined` where anything is not finite).
fn hessian_report(
    expr: &Expr,
    point: &[f64],
    value: f64,
    gradient: &[f64],
) -> Result<String, ExplainError> {
    let names = expr.variables();
    let n = names.len();
    let inputs: Vec<Tensor<f64>> = point.iter().map(|&x| Tensor::scalar(x)).collect();
    let failure = RefCell::new(None);
    let f = |v: &[Var<f64>]| {
        build(expr, v, false).unwrap_or_else(|e| {
            failure.borrow_mut().get_or_insert(e);
            Var::constant(Tensor::scalar(f64::NAN))
        })
    };
    let blocks = hessian(f, &inputs).map_err(|e| e.to_string())?;
    if let Some(e) = failure.into_inner() {
        return Err(e.to_string().into());
    }
    let h = nalgebra::DMatrix::from_fn(n, n, |i, j| blocks[i][j].item());
    let mut out = String::from("\nHessian ∂²f/∂a∂b:\n");
    let _ = writeln!(
        out,
        "  {:<8}{}",
        "",
        names.iter().map(|n| format!("{n:>14}")).collect::<String>()
    );
    for (i, name) in names.iter().enumerate() {
        let row: String = (0..n).map(|j| format!("{:>14.6}", h[(i, j)])).collect();
        let _ = writeln!(out, "  {name:<8}{row}");
    }
    let verdict = match undefined_reason(names, point, value, gradient, &h) {
        Some(reason) => {
            let _ = writeln!(out, "Eigenvalues: undefined");
            format!("undefined: {reason}")
        }
        None => classify(&mut out, &h, gradient),
    };
    let _ = writeln!(out, "Verdict: {verdict}");
    Ok(out)
}

/// Why the second-order test cannot be applied here, if anything is not finite.
fn undefined_reason(
    names: &[String],
    point: &[f64],
    value: f64,
    gradient: &[f64],
    h: &nalgebra::DMatrix<f64>,
) -> Option<String> {
    let bad = |xs: &[f64], label: &dyn Fn(usize) -> String| {
        let list: Vec<String> = xs
            .iter()
            .enumerate()
            .filter(|(_, x)| !x.is_finite())
            .take(3)
            .map(|(i, x)| format!("{} = {x}", label(i)))
            .collect();
        (!list.is_empty()).then(|| list.join(", "))
    };
    if let Some(list) = bad(point, &|i| names[i].clone()) {
        return Some(format!("the point has non-finite coordinates ({list})"));
    }
    if !value.is_finite() {
        return Some(format!("f = {value} at this point"));
    }
    if let Some(list) = bad(gradient, &|i| format!("∂f/∂{}", names[i])) {
        return Some(format!(
            "the gradient has non-finite entries ({list}) at this point"
        ));
    }
    let n = names.len();
    let entry = |k: usize| format!("∂²f/∂{}∂{}", names[k % n], names[k / n]);
    bad(h.as_slice(), &entry)
        .map(|list| format!("the Hessian has non-finite entries ({list}) at this point"))
}

/// Eigenvalues (written to `out`) and the verdict for a finite Hessian.
fn classify(out: &mut String, h: &nalgebra::DMatrix<f64>, gradient: &[f64]) -> String {
    let n = h.nrows();
    let matrix = Tensor::from_vec([n, n], (0..n * n).map(|k| h[(k / n, k % n)]).collect());
    // Ascending; the matrix is finite here, so only non-convergence can fail.
    let (eig, tol) = match eigh(&matrix) {
        Ok(eigen) => (eigen.eigenvalues.to_vec(), eigen.zero_tolerance()),
        Err(e) => {
            let _ = writeln!(out, "Eigenvalues: undefined");
            return format!("undefined: {}", e.message);
        }
    };
    let listed: Vec<String> = eig.iter().map(|v| format!("{v:.6}")).collect();
    let _ = writeln!(out, "Eigenvalues: {}", listed.join(", "));
    // The library's rule for a zero eigenvalue (n·ε·max|λ|), so `explain`
    // and `SymmetricEigen::is_positive_definite` give the same verdict.
    let pos = eig.iter().filter(|&&v| v > tol).count();
    let neg = eig.iter().filter(|&&v| v < -tol).count();
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
    if grad_norm > 1e-9 {
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
    }
}
