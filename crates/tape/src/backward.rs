//! The chain rule: one iterative reverse walk over the graph.
//!
//! Nodes are visited from the highest sequence number down (a max-heap keyed
//! by creation order), which is a topological order because every input is
//! created before the ops that use it. Gradients live in a separate map keyed
//! by node and each is removed the moment its node is processed, so
//! intermediate gradients are freed as soon as they are consumed. Unless the
//! graph is retained, each visited non-leaf node is removed from the arena
//! too. There is no recursion, so a chain of a million ops needs no stack.

use crate::anomaly::BackwardScopeGuard;
use crate::element::Element;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{GraphInner, Input, Leaf, Node, NodeKey, Scratch};
use crate::op::{BackwardContext, Op};
use crate::shape::fmt_shape;
use crate::tensor::Tensor;
use crate::var::{NodeRef, Var};
use slotmap::{SecondaryMap, SlotMap};
use smallvec::SmallVec;
use std::collections::BinaryHeap;
use std::panic::Location;
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
    let pass = Pass::new(
        graph,
        sink,
        create_graph,
        retain_graph || create_graph,
        trace,
    );
    let result = walk(pass, &mut scratch, roots);
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

/// The chain rule. Nodes are popped newest first; every consumer of a node
/// was created after it, so by then ∂L/∂node is complete. The node's op maps
/// it to one gradient per input, and each is added into that input's slot.
/// Everything else a pass does (hooks, capture, trace, retained gradients,
/// leaves, checks) is a call on [`Pass`] or [`Step`].
///
/// Each node's [`Step`] is built in place and the helpers return nothing
/// larger than a tensor: `bench tiny` spends most of each node's time in
/// this loop, and moving returned structs cost it 10% of its instructions.
fn walk<T: Element>(
    mut pass: Pass<'_, '_, T>,
    scratch: &mut Scratch<T>,
    roots: Vec<(NodeKey, Var<T>)>,
) -> Result<SecondaryMap<NodeKey, Var<T>>> {
    let Scratch { grads, heap } = scratch;
    for (key, g) in roots {
        let seq = pass.seq_of(key)?;
        if accumulate(grads, key, g)? {
            heap.push((seq, key));
        }
    }
    while let Some((_, key)) = heap.pop() {
        let mut grad = grads.remove(key).expect("a queued node has a gradient");
        pass.apply_hooks(key, &mut grad)?;
        let mut nodes = pass.graph.nodes.borrow_mut();
        let node = nodes.get_mut(key).ok_or_else(graph_freed)?;
        pass.observe(key, node, &grad);
        if let Some(leaf) = node.leaf_mut() {
            pass.deliver(leaf, &grad);
            continue;
        }
        // Dropping `step` (after this iteration, on an early return or in a
        // panic) puts the op back into a retained node.
        let mut step = Step::new(pass.graph, key, pass.retain);
        pass.gather_inputs(&nodes, &mut step)?;
        let value = step.take_op(&mut nodes)?;
        drop(nodes); // the op may record new nodes (create_graph)
        let output = pass.as_var(value, key);
        let _anomaly = pass.anomaly.then(|| step.enter_anomaly_scope());
        let mut result = step.op().backward(&BackwardContext {
            inputs: &step.inputs,
            output: &output,
            grad: &grad,
            needs_grad: &step.needs,
            create_graph: pass.create_graph,
        });
        // The gradients are taken out of the result where it lies: moving
        // the 152-byte result (`?`, or a `match` by value) cost a memcpy
        // per node (measured with cachegrind on `bench tiny`).
        let input_grads = match &mut result {
            Ok(input_grads) => input_grads,
            Err(_) => return result.map(|_| SecondaryMap::new()),
        };
        drop(grad); // consumed: freed before the inputs' gradients grow
        step.check_count(input_grads.len())?;
        for (i, slot) in input_grads.iter_mut().enumerate() {
            let Some((k, seq)) = step.target(i) else {
                continue;
            };
            let Some(g) = slot.take() else {
                continue;
            };
            step.check_gradient(i, &g, pass.anomaly)?;
            pass.record(i, k, &g);
            if accumulate(grads, k, g)? {
                heap.push((seq, k));
            }
        }
    }
    Ok(pass.captured)
}

type Arena<T> = SlotMap<NodeKey, Node<T>>;

/// One backward pass: its settings, and what it does with each node's
/// complete gradient besides the chain rule (hooks, capture for `grad()`,
/// the trace, retained gradients, leaves' gradients).
struct Pass<'g, 'a, T: Element> {
    graph: &'g Rc<GraphInner<T>>,
    sink: Sink<'a>,
    trace: Option<&'a mut Vec<RawStep<T>>>,
    /// Backward passes graph values to ops, so it records itself.
    create_graph: bool,
    /// Keep walked nodes (retain_graph, create_graph or `retain_grads`).
    retain: bool,
    /// Store each node's gradient in the node (the graph's `retain_grads`).
    retain_grads: bool,
    /// Anomaly mode was on when the pass started.
    anomaly: bool,
    /// Inputs created before this sequence number cannot lead to a target.
    min_seq: u64,
    /// The targets' gradients (`Sink::Capture`).
    captured: SecondaryMap<NodeKey, Var<T>>,
}

impl<'g, 'a, T: Element> Pass<'g, 'a, T> {
    fn new(
        graph: &'g Rc<GraphInner<T>>,
        sink: Sink<'a>,
        create_graph: bool,
        retain: bool,
        trace: Option<&'a mut Vec<RawStep<T>>>,
    ) -> Self {
        let retain_grads = graph.retain_grads.get();
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
        Pass {
            graph,
            sink,
            trace,
            create_graph,
            retain: retain || retain_grads,
            retain_grads,
            anomaly: crate::anomaly::is_anomaly_enabled(),
            min_seq,
            captured: SecondaryMap::new(),
        }
    }

    fn seq_of(&self, key: NodeKey) -> Result<u64> {
        let nodes = self.graph.nodes.borrow();
        nodes.get(key).map(|n| n.seq).ok_or_else(graph_freed)
    }

    /// Runs the node's hooks on `grad`, with the arena released (they may
    /// record ops).
    fn apply_hooks(&self, key: NodeKey, grad: &mut Var<T>) -> Result<()> {
        let nodes = self.graph.nodes.borrow();
        let node = nodes.get(key).ok_or_else(graph_freed)?;
        if node.extra.as_ref().is_none_or(|e| e.hooks.is_empty()) {
            return Ok(());
        }
        drop(nodes);
        run_hooks(self.graph, key, grad)
    }

    /// Keeps the node's complete gradient where this pass wants it: captured
    /// for `grad()`, a new trace step, the node's retained gradient.
    fn observe(&mut self, key: NodeKey, node: &mut Node<T>, grad: &Var<T>) {
        if let Sink::Capture(targets) = &self.sink {
            if targets.contains(&key) {
                self.captured.insert(key, grad.clone());
            }
        }
        if let Some(t) = self.trace.as_deref_mut() {
            t.push(RawStep {
                key,
                upstream: grad.value().clone(),
                contributions: Vec::new(),
            });
        }
        if self.retain_grads {
            node.extra_mut().grad = Some(grad.value().clone());
        }
    }

    /// Adds a leaf's gradient into the leaf or its parameter (`backward()` only).
    fn deliver(&self, leaf: &mut Leaf<T>, grad: &Var<T>) {
        if let Sink::Leaves = self.sink {
            let g = grad.value();
            match &leaf.param {
                Some(p) => p.accumulate_grad(g),
                None => match &mut leaf.grad {
                    Some(acc) => crate::tensor_ops::add_assign(acc, g),
                    slot @ None => *slot = Some(g.clone()),
                },
            }
        }
    }

    /// Adds input `i`'s gradient to the current trace step.
    fn record(&mut self, i: usize, key: NodeKey, g: &Var<T>) {
        if let Some(t) = self.trace.as_deref_mut() {
            let step = t.last_mut().expect("observe pushed the step");
            step.contributions.push((i, Some(key), g.value().clone()));
        }
    }

    /// A value as an op's backward sees it: a live graph node under
    /// `create_graph`, else a constant.
    fn as_var(&self, value: Tensor<T>, key: NodeKey) -> Var<T> {
        if self.create_graph {
            let graph = self.graph.clone();
            Var::from_node(value, NodeRef { graph, key })
        } else {
            Var::constant(value)
        }
    }

    /// Fills `step` with what the node's backward sees: its inputs as
    /// `Var`s, where each one's gradient would go, and which want one (a
    /// constant never does; nor, for `grad()`, a node older than every
    /// target).
    fn gather_inputs(&self, nodes: &Arena<T>, step: &mut Step<'g, T>) -> Result<()> {
        let node = &nodes[step.key];
        step.site = if self.anomaly {
            node.extra.as_ref().and_then(|e| e.site)
        } else {
            None
        };
        for input in &node.inputs {
            match input {
                Input::Node { key, seq } => {
                    let v = nodes.get(*key).ok_or_else(graph_freed)?.value.clone();
                    step.inputs.push(self.as_var(v, *key));
                    step.targets.push(Some((*key, *seq)));
                    step.needs.push(*seq >= self.min_seq);
                }
                Input::Const(t) => {
                    step.inputs.push(Var::constant((**t).clone()));
                    step.targets.push(None);
                    step.needs.push(false);
                }
            }
        }
        Ok(())
    }
}

/// One node's backward while it runs: its op, taken out of the node, and
/// what the op sees. Dropping it puts the op back into the node when the
/// graph is kept, so neither an early return nor a panic in the backward
/// can lose it.
struct Step<'g, T: Element> {
    graph: &'g GraphInner<T>,
    key: NodeKey,
    /// The node stays in the arena (the graph is retained).
    put_back: bool,
    op: Option<Box<dyn Op<T>>>,
    inputs: SmallVec<[Var<T>; 2]>,
    /// Input `i`'s node and sequence number (`None` for a constant).
    targets: SmallVec<[Option<(NodeKey, u64)>; 2]>,
    /// Whether input `i` wants a gradient.
    needs: SmallVec<[bool; 2]>,
    /// Where the op was created (anomaly mode), for error messages.
    site: Option<&'static Location<'static>>,
}

impl<'g, T: Element> Step<'g, T> {
    fn new(graph: &'g GraphInner<T>, key: NodeKey, put_back: bool) -> Self {
        Step {
            graph,
            key,
            put_back,
            op: None,
            inputs: SmallVec::new(),
            targets: SmallVec::new(),
            needs: SmallVec::new(),
            site: None,
        }
    }

    /// Takes the node's op out (without `put_back`, the whole node) and
    /// returns the node's value.
    fn take_op(&mut self, nodes: &mut Arena<T>) -> Result<Tensor<T>> {
        if self.put_back {
            let node = &mut nodes[self.key];
            self.op = Some(node.op.take().ok_or_else(|| {
                Error::new(
                    "backward",
                    ErrorKind::GraphFreed,
                    "re-entrant backward through the same node",
                )
            })?);
            Ok(node.value.clone())
        } else {
            let node = nodes.remove(self.key).expect("checked by the caller");
            self.op = Some(node.op.expect("non-leaf nodes have an op"));
            Ok(node.value)
        }
    }

    /// The op, once taken.
    fn op(&self) -> &dyn Op<T> {
        self.op.as_deref().expect("take_op ran")
    }

    /// Where input `i`'s gradient goes (its node and sequence number), if it wants one.
    fn target(&self, i: usize) -> Option<(NodeKey, u64)> {
        self.targets[i].filter(|_| self.needs[i])
    }

    /// Blames a non-finite value made inside the backward on this op (anomaly mode).
    fn enter_anomaly_scope(&self) -> BackwardScopeGuard {
        let inputs = self.inputs.iter().map(|v| v.value());
        crate::anomaly::enter_backward(self.op().name(), self.site, inputs)
    }

    /// An error unless the op returned one gradient (or `None`) per input.
    fn check_count(&self, returned: usize) -> Result<()> {
        let expected = self.inputs.len();
        if returned == expected {
            return Ok(());
        }
        Err(Error::argument(
            "backward",
            format!(
                "op {} returned {returned} gradients for {expected} inputs",
                self.op().name()
            ),
        ))
    }

    /// An error unless input `i`'s gradient has the input's shape and, in
    /// anomaly mode, only finite values.
    fn check_gradient(&self, i: usize, g: &Var<T>, anomaly: bool) -> Result<()> {
        let input = &self.inputs[i];
        if !g.value().same_shape(input.value()) {
            return Err(Error::shape(
                "backward",
                format!(
                    "op {} returned a gradient of shape {} for input {} of shape {}",
                    self.op().name(),
                    fmt_shape(g.shape()),
                    i,
                    fmt_shape(input.shape())
                ),
            ));
        }
        if !anomaly {
            return Ok(());
        }
        crate::anomaly::check_finite(
            self.op().name(),
            "backward",
            &format!("gradient for input {i}"),
            g.value(),
            self.site,
            self.inputs.iter().map(|v| v.value()),
        )
    }
}

impl<T: Element> Drop for Step<'_, T> {
    fn drop(&mut self) {
        let Some(op) = self.op.take().filter(|_| self.put_back) else {
            return;
        };
        // The arena is free whenever a step ends (each borrow is released
        // before the backward runs); try_borrow_mut keeps a panic from aborting.
        if let Ok(mut nodes) = self.graph.nodes.try_borrow_mut() {
            if let Some(node) = nodes.get_mut(self.key) {
                node.op = Some(op);
            }
        }
    }
}

/// Runs the node's gradient hooks in order; each may replace the gradient.
fn run_hooks<T: Element>(graph: &Rc<GraphInner<T>>, key: NodeKey, grad: &mut Var<T>) -> Result<()> {
    let mut hooks = match graph
        .nodes
        .borrow_mut()
        .get_mut(key)
        .and_then(|n| n.extra.as_mut())
    {
        Some(e) => std::mem::take(&mut e.hooks),
        None => return Ok(()),
    };
    let mut result = Ok(());
    for (_, hook) in hooks.iter_mut() {
        if let Some(new) = hook(grad) {
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
            *grad = new;
        }
    }
    // Put the hooks back (after any registered while they ran).
    if let Some(node) = graph.nodes.borrow_mut().get_mut(key) {
        let extra = node.extra_mut();
        hooks.append(&mut extra.hooks);
        extra.hooks = hooks;
    }
    result
}

impl<T: Element> Var<T> {
    /// Backpropagates from this scalar: fills `grad()` of every leaf and
    /// parameter it depends on, accumulating where a value is used more than
    /// once, then frees the walked graph.
    ///
    /// # Panics
    /// At the caller's line, with the error [`Var::try_backward`] returns.
    #[track_caller]
    pub fn backward(&self) {
        crate::error::or_panic(self.try_backward(BackwardOptions::default()))
    }

    /// [`Var::backward`] with an explicit upstream gradient and/or `retain_graph`.
    ///
    /// # Panics
    /// At the caller's line, with the error [`Var::try_backward`] returns.
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
///
/// # Panics
/// At the caller's line, with the error [`try_grad`] returns (an output
/// that is not a single element or does not require grad, an input from
/// another graph, a freed graph).
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
