//! The chain rule: one iterative reverse walk over the graph.
//!
//! Nodes are visited from the highest sequence number down (a max-heap keyed
//! by creation order), which is a topological order because every input is
//! created before the ops that use it. Gradients live in a separate map keyed
//! by node and each is removed the moment its node is processed, so
//! intermediate gradients are freed as soon as they are consumed. Unless the
//! graph is retained, each visited non-leaf node is removed from the arena
//! too. There is no recursion, so a chain of a million ops needs no stack.

use crate::element::Element;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{GraphInner, Input, NodeKey, Scratch};
use crate::op::BackwardContext;
use crate::shape::fmt_shape;
use crate::tensor::Tensor;
use crate::var::{NodeRef, Var};
use slotmap::SecondaryMap;
use smallvec::SmallVec;
use std::collections::BinaryHeap;
use std::rc::Rc;

/// Options for [`Var::backward_with`].
#[derive(Clone, Default)]
pub struct BackwardOptions<T: Element> {
    /// ∂L/∂output; required when the output is not a single element.
    pub upstream: Option<Tensor<T>>,
    /// Keep the graph so backward can run through it again.
    pub retain_graph: bool,
}

/// Where the engine delivers gradients.
enum Sink<'a> {
    /// Accumulate into leaves (and their parameters): `backward()`.
    Leaves,
    /// Capture the gradients of these nodes and return them: `grad()`.
    Capture(&'a [NodeKey]),
    /// Propagate everywhere, store nothing (a traced, side-effect-free pass).
    Observe,
}

fn graph_freed() -> Error {
    Error::new(
        "backward",
        ErrorKind::GraphFreed,
        "the graph behind this value was freed by an earlier backward \
         (pass retain_graph: true to the first backward to run backward twice)",
    )
}

/// Adds `g` into the gradient slot of `key`; returns true if the slot was empty.
fn accumulate<T: Element>(
    grads: &mut SecondaryMap<NodeKey, Var<T>>,
    key: NodeKey,
    g: Var<T>,
) -> Result<bool> {
    match grads.get_mut(key) {
        None => {
            grads.insert(key, g);
            Ok(true)
        }
        Some(acc) => {
            if acc.requires_grad() || g.requires_grad() {
                *acc = acc.try_add(&g)?;
            } else {
                // In place: copies first only if the storage is shared.
                crate::tensor_ops::add_assign(acc.value_mut(), g.value());
            }
            Ok(false)
        }
    }
}

/// Runs the chain rule from `roots` (node, ∂L/∂node) down through the graph.
fn run<T: Element>(
    graph: &Rc<GraphInner<T>>,
    roots: Vec<(NodeKey, Var<T>)>,
    sink: Sink<'_>,
    create_graph: bool,
    retain_graph: bool,
    trace: Option<&mut Vec<RawStep<T>>>,
) -> Result<SecondaryMap<NodeKey, Var<T>>> {
    // Borrow the graph's scratch space for this pass (a backward started from
    // inside an op's backward finds it taken and starts with empty scratch).
    let mut scratch = match graph.scratch.try_borrow_mut() {
        Ok(mut s) => std::mem::replace(
            &mut *s,
            Scratch {
                grads: SecondaryMap::new(),
                heap: BinaryHeap::new(),
            },
        ),
        Err(_) => Scratch {
            grads: SecondaryMap::new(),
            heap: BinaryHeap::new(),
        },
    };
    let result = walk(
        graph,
        &mut scratch,
        roots,
        sink,
        create_graph,
        retain_graph || create_graph,
        trace,
    );
    // Gradients left behind by an error are dropped here, never carried over.
    scratch.grads.clear();
    scratch.heap.clear();
    if let Ok(mut s) = graph.scratch.try_borrow_mut() {
        *s = scratch;
    }
    result
}

/// One chain-rule step recorded by a traced backward (see [`crate::inspect`]).
pub(crate) struct RawStep<T: Element> {
    pub key: NodeKey,
    pub upstream: Tensor<T>,
    /// (input position, input node key if any, contribution sent to it)
    pub contributions: Vec<(usize, Option<NodeKey>, Tensor<T>)>,
}

#[allow(clippy::too_many_arguments)]
fn walk<T: Element>(
    graph: &Rc<GraphInner<T>>,
    scratch: &mut Scratch<T>,
    roots: Vec<(NodeKey, Var<T>)>,
    sink: Sink<'_>,
    create_graph: bool,
    retain: bool,
    mut trace: Option<&mut Vec<RawStep<T>>>,
) -> Result<SecondaryMap<NodeKey, Var<T>>> {
    let Scratch { grads, heap } = scratch;
    let mut captured: SecondaryMap<NodeKey, Var<T>> = SecondaryMap::new();
    let retain_grads = graph.retain_grads.get();
    let retain = retain || retain_grads;
    let anomaly = crate::anomaly::is_anomaly_enabled();

    // Nodes created before the earliest target cannot lead to a target.
    let min_seq = match &sink {
        Sink::Leaves | Sink::Observe => 0,
        Sink::Capture(targets) => {
            let nodes = graph.nodes.borrow();
            targets
                .iter()
                .filter_map(|k| nodes.get(*k).map(|n| n.seq))
                .min()
                .unwrap_or(u64::MAX)
        }
    };
    for (key, g) in roots {
        let seq = graph
            .nodes
            .borrow()
            .get(key)
            .map(|n| n.seq)
            .ok_or_else(graph_freed)?;
        if accumulate(grads, key, g)? {
            heap.push((seq, key));
        }
    }

    while let Some((_, key)) = heap.pop() {
        let mut grad = grads.remove(key).expect("a queued node has a gradient");
        // Gather what backward needs, then release the arena so the op may
        // record new nodes (create_graph) while it runs.
        let mut nodes = graph.nodes.borrow_mut();
        let has_hooks = nodes
            .get(key)
            .ok_or_else(graph_freed)?
            .extra
            .as_ref()
            .is_some_and(|e| !e.hooks.is_empty());
        if has_hooks {
            drop(nodes);
            grad = run_hooks(graph, key, grad)?;
            nodes = graph.nodes.borrow_mut();
        }
        if let Sink::Capture(targets) = &sink {
            if targets.contains(&key) {
                captured.insert(key, grad.clone());
            }
        }
        if let Some(t) = trace.as_deref_mut() {
            t.push(RawStep {
                key,
                upstream: grad.value().clone(),
                contributions: Vec::new(),
            });
        }
        let node = nodes.get_mut(key).ok_or_else(graph_freed)?;
        if retain_grads {
            node.extra_mut().grad = Some(grad.value().clone());
        }
        if let Some(leaf) = node.leaf_mut() {
            if let Sink::Leaves = sink {
                let g = grad.value();
                match &leaf.param {
                    Some(p) => p.accumulate_grad(g),
                    None => match &mut leaf.grad {
                        Some(acc) => crate::tensor_ops::add_assign(acc, g),
                        slot @ None => *slot = Some(g.clone()),
                    },
                }
            }
            continue;
        }
        let as_var = |value: Tensor<T>, k: NodeKey| {
            if create_graph {
                Var::from_node(
                    value,
                    NodeRef {
                        graph: graph.clone(),
                        key: k,
                    },
                )
            } else {
                Var::constant(value)
            }
        };
        let node = &nodes[key];
        let site = if anomaly {
            node.extra.as_ref().and_then(|e| e.site)
        } else {
            None
        };
        let mut input_vars: SmallVec<[Var<T>; 2]> = SmallVec::new();
        let mut keys: SmallVec<[Option<(NodeKey, u64)>; 2]> = SmallVec::new();
        let mut needs: SmallVec<[bool; 2]> = SmallVec::new();
        for input in &node.inputs {
            match input {
                Input::Node { key: k, seq } => {
                    let v = nodes.get(*k).ok_or_else(graph_freed)?.value.clone();
                    input_vars.push(as_var(v, *k));
                    keys.push(Some((*k, *seq)));
                    needs.push(*seq >= min_seq);
                }
                Input::Const(t) => {
                    input_vars.push(Var::constant((**t).clone()));
                    keys.push(None);
                    needs.push(false);
                }
            }
        }
        let (op, value) = if retain {
            let node = &mut nodes[key];
            let op = node.op.take().ok_or_else(|| {
                Error::new(
                    "backward",
                    ErrorKind::GraphFreed,
                    "re-entrant backward through the same node",
                )
            })?;
            (op, node.value.clone())
        } else {
            let node = nodes.remove(key).expect("checked above");
            (node.op.expect("non-leaf nodes have an op"), node.value)
        };
        drop(nodes);

        let output = as_var(value, key);
        let _scope = anomaly.then(|| {
            crate::anomaly::enter_backward(op.name(), site, input_vars.iter().map(|v| v.value()))
        });
        let result = op.backward(&BackwardContext {
            inputs: &input_vars,
            output: &output,
            grad: &grad,
            needs_grad: &needs,
            create_graph,
        });
        let input_grads = match result {
            Ok(g) => g,
            Err(e) => {
                restore_op(graph, key, op, retain);
                return Err(e);
            }
        };
        drop(grad);
        for (i, g) in input_grads.into_iter().enumerate() {
            let (Some((k, s)), Some(g)) = (keys[i], g) else {
                continue;
            };
            if !needs[i] {
                continue;
            }
            let checked = if !g.value().same_shape(input_vars[i].value()) {
                Err(Error::shape(
                    "backward",
                    format!(
                        "op {} returned a gradient of shape {} for input {} of shape {}",
                        op.name(),
                        fmt_shape(g.shape()),
                        i,
                        fmt_shape(input_vars[i].shape())
                    ),
                ))
            } else if anomaly {
                crate::anomaly::check_finite(
                    op.name(),
                    "backward",
                    &format!("gradient for input {i}"),
                    g.value(),
                    site,
                    input_vars.iter().map(|v| v.value()),
                )
            } else {
                Ok(())
            };
            if let Err(e) = checked {
                restore_op(graph, key, op, retain);
                return Err(e);
            }
            if let Some(t) = trace.as_deref_mut() {
                t.last_mut().expect("pushed above").contributions.push((
                    i,
                    Some(k),
                    g.value().clone(),
                ));
            }
            if accumulate(grads, k, g)? {
                heap.push((s, k));
            }
        }
        restore_op(graph, key, op, retain);
    }
    Ok(captured)
}

/// Runs the node's gradient hooks in order; each may replace the gradient.
fn run_hooks<T: Element>(
    graph: &Rc<GraphInner<T>>,
    key: NodeKey,
    mut grad: Var<T>,
) -> Result<Var<T>> {
    let mut hooks = match graph
        .nodes
        .borrow_mut()
        .get_mut(key)
        .and_then(|n| n.extra.as_mut())
    {
        Some(e) => std::mem::take(&mut e.hooks),
        None => return Ok(grad),
    };
    let mut result = Ok(());
    for (_, hook) in hooks.iter_mut() {
        if let Some(new) = hook(&grad) {
            if !new.value().same_shape(grad.value()) {
                result = Err(Error::shape(
                    "hook",
                    format!(
                        "a hook returned a gradient of shape {} for a value of shape {}",
                        fmt_shape(new.shape()),
                        fmt_shape(grad.shape())
                    ),
                ));
                break;
            }
            grad = new;
        }
    }
    // Put the hooks back (after any registered while they ran).
    if let Some(node) = graph.nodes.borrow_mut().get_mut(key) {
        let extra = node.extra_mut();
        hooks.append(&mut extra.hooks);
        extra.hooks = hooks;
    }
    result.map(|_| grad)
}

/// Puts an op back into its retained node after its backward ran.
fn restore_op<T: Element>(
    graph: &Rc<GraphInner<T>>,
    key: NodeKey,
    op: Box<dyn crate::op::Op<T>>,
    retain: bool,
) {
    if retain {
        if let Some(node) = graph.nodes.borrow_mut().get_mut(key) {
            node.op = Some(op);
        }
    }
}

impl<T: Element> Var<T> {
    /// Backpropagates from this scalar: fills `grad()` of every leaf and
    /// parameter it depends on, accumulating where a value is used more than
    /// once, then frees the walked graph. Panics on error (see [`Var::try_backward`]).
    #[track_caller]
    pub fn backward(&self) {
        crate::error::or_panic(self.try_backward(BackwardOptions::default()))
    }

    /// [`Var::backward`] with an explicit upstream gradient and/or `retain_graph`.
    #[track_caller]
    pub fn backward_with(&self, options: BackwardOptions<T>) {
        crate::error::or_panic(self.try_backward(options))
    }

    /// Fallible backward: errors if this value does not require grad, is not a
    /// scalar and no upstream gradient is given, or its graph was freed.
    pub fn try_backward(&self, options: BackwardOptions<T>) -> Result<()> {
        let node = self.node.as_ref().ok_or_else(|| {
            Error::new(
                "backward",
                ErrorKind::Argument,
                "this value does not require grad (it has no graph node)",
            )
        })?;
        let seed = seed_gradient("backward", self, options.upstream)?;
        run(
            &node.graph,
            vec![(node.key, Var::constant(seed))],
            Sink::Leaves,
            false,
            options.retain_graph,
            None,
        )?;
        Ok(())
    }
}

/// A side-effect-free backward from `output` (seeded with ones or
/// `upstream`) that records every chain-rule step, keeping the graph.
pub(crate) fn traced<T: Element>(
    output: &Var<T>,
    upstream: Option<Tensor<T>>,
) -> Result<Vec<RawStep<T>>> {
    let node = output.node.as_ref().ok_or_else(|| {
        Error::new(
            "trace",
            ErrorKind::Argument,
            "this value does not require grad (it has no graph node)",
        )
    })?;
    let seed = seed_gradient("trace", output, upstream)?;
    let mut steps = Vec::new();
    run(
        &node.graph,
        vec![(node.key, Var::constant(seed))],
        Sink::Observe,
        false,
        true,
        Some(&mut steps),
    )?;
    Ok(steps)
}

fn seed_gradient<T: Element>(
    op: &'static str,
    output: &Var<T>,
    upstream: Option<Tensor<T>>,
) -> Result<Tensor<T>> {
    match upstream {
        Some(u) if u.shape() == output.shape() => Ok(u),
        Some(u) => Err(Error::shape(
            op,
            format!(
                "upstream gradient {} does not match output {}",
                fmt_shape(u.shape()),
                fmt_shape(output.shape())
            ),
        )),
        None if output.numel() == 1 => Ok(Tensor::ones(output.shape())),
        None => Err(Error::new(
            op,
            ErrorKind::NotScalar,
            format!(
                "output of shape {} is not a scalar: pass an upstream gradient of that shape",
                fmt_shape(output.shape())
            ),
        )),
    }
}

/// Options for [`try_grad`].
#[derive(Clone, Copy, Default, Debug)]
pub struct GradOptions {
    /// Record the backward pass so the result can be differentiated again.
    pub create_graph: bool,
    /// Keep the graph for another backward (always on with `create_graph`).
    pub retain_graph: bool,
}

/// ∂(Σ outputs·upstream)/∂inputs, like `torch.autograd.grad`. Leaves' stored
/// gradients are not touched. With `create_graph` the results are graph
/// values that can be differentiated again. Inputs that the outputs do not
/// depend on get zeros. `upstream[i]` defaults to ones for single-element outputs.
pub fn try_grad<T: Element>(
    outputs: &[&Var<T>],
    upstream: &[Option<&Var<T>>],
    inputs: &[&Var<T>],
    options: GradOptions,
) -> Result<Vec<Var<T>>> {
    let mut graph: Option<Rc<GraphInner<T>>> = None;
    let mut roots = Vec::with_capacity(outputs.len());
    for (i, out) in outputs.iter().enumerate() {
        let Some(node) = &out.node else {
            return Err(Error::new(
                "grad",
                ErrorKind::Argument,
                format!("output {i} does not require grad"),
            ));
        };
        match &graph {
            None => graph = Some(node.graph.clone()),
            Some(g) if Rc::ptr_eq(g, &node.graph) => {}
            Some(_) => {
                return Err(Error::new(
                    "grad",
                    ErrorKind::ForeignGraph,
                    "outputs belong to different graphs",
                ))
            }
        }
        let seed = match upstream.get(i).copied().flatten() {
            Some(u) => {
                seed_gradient("grad", out, Some(u.value().clone()))?;
                u.clone()
            }
            None => Var::constant(seed_gradient("grad", out, None)?),
        };
        roots.push((node.key, seed));
    }
    let graph = graph.ok_or_else(|| Error::argument("grad", "no outputs given"))?;
    let mut targets = Vec::with_capacity(inputs.len());
    for (i, v) in inputs.iter().enumerate() {
        match &v.node {
            Some(n) if Rc::ptr_eq(&n.graph, &graph) => targets.push(n.key),
            Some(_) => {
                return Err(Error::new(
                    "grad",
                    ErrorKind::ForeignGraph,
                    format!("input {i} belongs to another graph"),
                ))
            }
            None => {
                return Err(Error::new(
                    "grad",
                    ErrorKind::Argument,
                    format!("input {i} does not require grad"),
                ))
            }
        }
    }
    let captured = run(
        &graph,
        roots,
        Sink::Capture(&targets),
        options.create_graph,
        options.retain_graph,
        None,
    )?;
    Ok(targets
        .iter()
        .zip(inputs)
        .map(|(k, v)| {
            captured
                .get(*k)
                .cloned()
                .unwrap_or_else(|| Var::constant(v.value().zeros_like()))
        })
        .collect())
}

/// The gradient of a single-element `output` with respect to each input.
///
/// ```
/// use chainrule_tape::{grad, Graph, Tensor};
/// let g = Graph::new();
/// let x = g.leaf(Tensor::scalar(3.0f64));
/// let y = &(&x * &x) * &x;                     // x³
/// let [dy] = grad(&y, [&x], true);             // 3x², still in the graph
/// let [d2y] = grad(&dy, [&x], false);          // 6x
/// assert_eq!((dy.item(), d2y.item()), (27.0, 18.0));
/// ```
#[track_caller]
pub fn grad<T: Element, const N: usize>(
    output: &Var<T>,
    inputs: [&Var<T>; N],
    create_graph: bool,
) -> [Var<T>; N] {
    let options = GradOptions {
        create_graph,
        retain_graph: create_graph,
    };
    let v = crate::error::or_panic(try_grad(&[output], &[], &inputs, options));
    match v.try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("try_grad returns one gradient per input"),
    }
}
