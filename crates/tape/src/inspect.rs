//! Seeing inside: a graph summary (one row per node), DOT export for
//! Graphviz, and a backward trace that shows each chain-rule step.

use crate::backward::traced;
use crate::element::Element;
use crate::error::Result;
use crate::graph::{Graph, Input, NodeKey};
use crate::tensor::Tensor;
use crate::var::Var;
use std::collections::HashMap;
use std::fmt::{self, Write};

/// A short description of a tensor's values: the number itself for one
/// element, else shape, mean, min and max.
pub fn summarize<T: Element>(t: &Tensor<T>) -> String {
    if t.numel() == 1 {
        return format!("{:.6}", t.data()[0].as_f64());
    }
    if t.numel() == 0 {
        return format!("{:?} (empty)", t.shape());
    }
    let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for v in t.data() {
        let v = v.as_f64();
        lo = lo.min(v);
        hi = hi.max(v);
        sum += v;
    }
    format!(
        "{:?} mean {:.4} min {:.4} max {:.4}",
        t.shape(),
        sum / t.numel() as f64,
        lo,
        hi
    )
}

/// One live node as the summary and DOT export see it.
struct NodeView<T: Element> {
    seq: u64,
    label: String,
    op: String,
    inputs: Vec<Option<u64>>,
    value: Tensor<T>,
    grad: Option<Tensor<T>>,
    named: bool,
}

impl<T: Element> Graph<T> {
    fn views(&self) -> Vec<NodeView<T>> {
        let nodes = self.inner.nodes.borrow();
        let mut out: Vec<NodeView<T>> = nodes
            .values()
            .map(|n| {
                let name = n.name().map(str::to_string);
                let leaf_grad = n.leaf().and_then(|l| match &l.param {
                    Some(p) => p.grad(),
                    None => l.grad.clone(),
                });
                NodeView {
                    seq: n.seq,
                    named: name.is_some(),
                    label: name.unwrap_or_else(|| format!("#{}", n.seq)),
                    op: n.op.as_ref().map_or_else(
                        || {
                            if n.leaf().is_some() {
                                "leaf".into()
                            } else {
                                "?".into()
                            }
                        },
                        |o| o.describe(),
                    ),
                    inputs: n
                        .inputs
                        .iter()
                        .map(|i| match i {
                            Input::Node { key, .. } => nodes.get(*key).map(|m| m.seq),
                            Input::Const(_) => None,
                        })
                        .collect(),
                    value: n.value.clone(),
                    grad: leaf_grad.or_else(|| n.extra.as_ref().and_then(|e| e.grad.clone())),
                }
            })
            .collect();
        out.sort_by_key(|v| v.seq);
        out
    }

    /// Keeps every node and its total gradient through backward, so that
    /// [`Graph::summary`] and [`Graph::to_dot`] can show gradients of
    /// intermediate values too (like `retain_grad()` on every tensor; it also
    /// implies `retain_graph`).
    pub fn retain_grads(&self, on: bool) {
        self.inner.retain_grads.set(on);
    }

    /// One row per live node in creation (topological) order: id, op, inputs,
    /// shape, value, and the gradient where one is known (leaves after
    /// backward; every node with [`Graph::retain_grads`]).
    pub fn summary(&self) -> String {
        let views = self.views();
        let rows: Vec<[String; 5]> = views
            .iter()
            .map(|v| {
                let inputs = if v.inputs.is_empty() {
                    "-".to_string()
                } else {
                    v.inputs
                        .iter()
                        .map(|i| i.map_or("const".to_string(), |s| format!("#{s}")))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let name = if v.named {
                    v.label.clone()
                } else {
                    String::new()
                };
                let grad = v.grad.as_ref().map_or(String::new(), summarize);
                [name, v.op.clone(), inputs, summarize(&v.value), grad]
            })
            .collect();
        let widths = [
            column_width(rows.iter().map(|r| r[0].as_str()), 4),
            column_width(rows.iter().map(|r| r[1].as_str()), 4),
            column_width(rows.iter().map(|r| r[2].as_str()), 6),
            column_width(rows.iter().map(|r| r[3].as_str()), 5),
        ];
        let mut s = String::new();
        let header = ["name", "op", "inputs", "value"];
        let _ = write_row(&mut s, "  id", header.into_iter().zip(widths), "grad");
        for (v, row) in views.iter().zip(&rows) {
            let cells = row[..4].iter().map(String::as_str).zip(widths);
            let _ = write_row(&mut s, &format!("{:>4}", v.seq), cells, &row[4]);
        }
        s
    }

    /// The graph in Graphviz DOT: a record per value (for one-element values
    /// micrograd-style `{ name | data | grad }`), an ellipse per op, and one
    /// edge per (input, argument slot), so `a + a` shows two edges.
    pub fn to_dot(&self) -> String {
        let views = self.views();
        let mut s =
            String::from("digraph chainrule {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
        let mut consts = 0usize;
        for v in &views {
            let data = if v.value.numel() == 1 {
                format!("data {:.4}", v.value.data()[0].as_f64())
            } else {
                format!("{:?}", v.value.shape())
            };
            let grad = match &v.grad {
                Some(g) if g.numel() == 1 => format!("grad {:.4}", g.data()[0].as_f64()),
                Some(g) => format!("grad {}", escape(&summarize(g))),
                None => "grad".to_string(),
            };
            let _ = writeln!(
                s,
                "  v{} [shape=record, label=\"{{ {} | {} | {} }}\"];",
                v.seq,
                escape(&v.label),
                escape(&data),
                grad
            );
            if v.op != "leaf" {
                let _ = writeln!(
                    s,
                    "  op{} [shape=ellipse, label=\"{}\"];",
                    v.seq,
                    escape(&v.op)
                );
                let _ = writeln!(s, "  op{} -> v{};", v.seq, v.seq);
                for (slot, input) in v.inputs.iter().enumerate() {
                    match input {
                        Some(src) => {
                            let _ = writeln!(s, "  v{src} -> op{} [label=\"{slot}\"];", v.seq);
                        }
                        None => {
                            let _ = writeln!(
                                s,
                                "  c{consts} [shape=box, style=dashed, label=\"const\"];"
                            );
                            let _ = writeln!(s, "  c{consts} -> op{} [label=\"{slot}\"];", v.seq);
                            consts += 1;
                        }
                    }
                }
            }
        }
        s.push_str("}\n");
        s
    }

    /// The chain-rule steps of a backward pass from `output` (ones, or
    /// `upstream`), computed without touching any stored gradient or freeing
    /// the graph. See [`BackwardTrace`].
    pub fn trace(&self, output: &Var<T>, upstream: Option<Tensor<T>>) -> Result<BackwardTrace<T>> {
        let raw = traced(output, upstream)?;
        let nodes = self.inner.nodes.borrow();
        let label = |k: NodeKey| -> (u64, String) {
            nodes.get(k).map_or((u64::MAX, "?".into()), |n| {
                (
                    n.seq,
                    n.name()
                        .map_or_else(|| format!("#{}", n.seq), str::to_string),
                )
            })
        };
        let steps = raw
            .into_iter()
            .map(|r| {
                let (id, name) = label(r.key);
                let node = nodes.get(r.key);
                let op = node.and_then(|n| n.op.as_ref());
                let contributions = r
                    .contributions
                    .into_iter()
                    .map(|(input, key, value)| {
                        let (to, to_label) = key.map_or((u64::MAX, "const".to_string()), label);
                        let local = (value.numel() == 1
                            && r.upstream.numel() == 1
                            && r.upstream.data()[0] != T::zero())
                        .then(|| value.data()[0].as_f64() / r.upstream.data()[0].as_f64());
                        Contribution {
                            input,
                            to,
                            to_label,
                            formula: op.and_then(|o| o.formula(input)),
                            local,
                            value,
                        }
                    })
                    .collect();
                TraceStep {
                    node: id,
                    label: name,
                    op: op.map_or_else(|| "leaf".to_string(), |o| o.describe()),
                    upstream: r.upstream,
                    contributions,
                }
            })
            .collect();
        Ok(BackwardTrace { steps })
    }
}

/// Escapes text for a DOT record label.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '{' | '}' | '|' | '<' | '>' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What one node sent to one of its inputs during backward.
#[derive(Clone, Debug)]
pub struct Contribution<T: Element> {
    /// The argument position.
    pub input: usize,
    /// The input node's id (creation sequence number).
    pub to: u64,
    /// The input's name or `#id`.
    pub to_label: String,
    /// The local derivative ∂node/∂input as a formula, if the op gives one.
    pub formula: Option<String>,
    /// The local derivative as a number, for one-element values.
    pub local: Option<f64>,
    /// upstream × local derivative: the gradient sent to the input.
    pub value: Tensor<T>,
}

/// One chain-rule step: a node, the gradient that reached it, and what it sent on.
#[derive(Clone, Debug)]
pub struct TraceStep<T: Element> {
    /// The node's id (creation sequence number).
    pub node: u64,
    /// Its name or `#id`.
    pub label: String,
    /// The op that produced it (`leaf` for leaves).
    pub op: String,
    /// ∂L/∂node: the sum of the contributions it received.
    pub upstream: Tensor<T>,
    /// The gradients it sent to its inputs.
    pub contributions: Vec<Contribution<T>>,
}

/// Every chain-rule step of one backward pass, newest node first.
#[derive(Clone, Debug)]
pub struct BackwardTrace<T: Element> {
    /// The steps in the order the engine took them.
    pub steps: Vec<TraceStep<T>>,
}

impl<T: Element> BackwardTrace<T> {
    /// The contributions each node received, keyed by node id, in order.
    pub fn received(&self) -> HashMap<u64, Vec<(String, Tensor<T>)>> {
        let mut m: HashMap<u64, Vec<(String, Tensor<T>)>> = HashMap::new();
        for s in &self.steps {
            for c in &s.contributions {
                m.entry(c.to)
                    .or_default()
                    .push((s.label.clone(), c.value.clone()));
            }
        }
        m
    }

    /// The gradient that reached node `id` (∂L/∂node), if it was visited.
    pub fn gradient_of(&self, id: u64) -> Option<&Tensor<T>> {
        self.steps
            .iter()
            .find(|s| s.node == id)
            .map(|s| &s.upstream)
    }
}

/// A step's incoming-gradient text and its (input, local derivative, contribution) texts.
type TraceRow = (String, Vec<(String, String, String)>);

impl<T: Element> fmt::Display for BackwardTrace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.rows();
        let widths = [
            column_width(self.steps.iter().map(|s| s.label.as_str()), 4),
            column_width(self.steps.iter().map(|s| s.op.as_str()), 2),
            column_width(rows.iter().map(|r| r.0.as_str()), 23),
            column_width(
                rows.iter().flat_map(|r| r.1.iter().map(|c| c.0.as_str())),
                7,
            ),
            column_width(
                rows.iter().flat_map(|r| r.1.iter().map(|c| c.1.as_str())),
                18,
            ),
        ];
        let header = [
            "node",
            "op",
            "∂L/∂node (= Σ received)",
            "→ input",
            "local ∂node/∂input",
        ];
        write_row(f, "step", header.into_iter().zip(widths), "contribution")?;
        for (i, (s, (incoming, contributions))) in self.steps.iter().zip(&rows).enumerate() {
            let step = format!("{:<4}", i + 1);
            if contributions.is_empty() {
                let cells = [s.label.as_str(), s.op.as_str()].into_iter().zip(widths);
                write_row(f, &step, cells, incoming)?;
            }
            for (j, (to, local, value)) in contributions.iter().enumerate() {
                let first = [&step, &s.label, &s.op, incoming.as_str()];
                let [step, node, op, up] = if j == 0 { first } else { ["    ", "", "", ""] };
                let cells = [node, op, up, to.as_str(), local.as_str()];
                write_row(f, step, cells.into_iter().zip(widths), value)?;
            }
        }
        Ok(())
    }
}

impl<T: Element> BackwardTrace<T> {
    /// Each step's incoming-gradient text and its contributions' texts.
    fn rows(&self) -> Vec<TraceRow> {
        let received = self.received();
        self.steps
            .iter()
            .map(|s| {
                let incoming = match received.get(&s.node) {
                    Some(parts) if parts.len() > 1 => {
                        let parts: Vec<String> = parts.iter().map(|(_, t)| summarize(t)).collect();
                        format!("{} = {}", summarize(&s.upstream), parts.join(" + "))
                    }
                    _ => summarize(&s.upstream),
                };
                let contributions = s
                    .contributions
                    .iter()
                    .map(|c| {
                        let local = match (&c.formula, c.local) {
                            (Some(fm), Some(v)) => format!("{fm} = {v:.6}"),
                            (Some(fm), None) => fm.clone(),
                            (None, Some(v)) => format!("{v:.6}"),
                            (None, None) => String::new(),
                        };
                        (c.to_label.clone(), local, summarize(&c.value))
                    })
                    .collect();
                (incoming, contributions)
            })
            .collect()
    }
}

/// Columns are padded to their longest cell up to this many characters; a
/// longer cell overflows its column instead of widening every row (padding
/// each of n rows to the longest of n labels made the text O(n²), and a
/// width above 65,535 is out of range for the formatter).
const MAX_COLUMN_WIDTH: usize = 40;

/// The width of a column: its longest cell, at least `min`, at most
/// [`MAX_COLUMN_WIDTH`].
fn column_width<'a>(cells: impl Iterator<Item = &'a str>, min: usize) -> usize {
    cells
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(min, MAX_COLUMN_WIDTH.max(min))
}

/// Writes `first`, then each (cell, width) left-aligned after two spaces,
/// then two spaces and `last`, and a newline.
fn write_row<'a>(
    out: &mut impl Write,
    first: &str,
    cells: impl IntoIterator<Item = (&'a str, usize)>,
    last: &str,
) -> fmt::Result {
    out.write_str(first)?;
    for (cell, width) in cells {
        out.write_str("  ")?;
        out.write_str(cell)?;
        for _ in cell.chars().count()..width {
            out.write_char(' ')?;
        }
    }
    out.write_str("  ")?;
    out.write_str(last)?;
    out.write_char('\n')
}
