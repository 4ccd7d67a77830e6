//! `Var<T>`: the user's handle on a value in the graph.

use crate::element::Element;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Extra, Graph, GraphInner, Input, Node, NodeKey};
use crate::mode::is_grad_enabled;
use crate::op::Op;
use crate::tensor::Tensor;
use smallvec::SmallVec;
use std::rc::Rc;

/// A reference to a node: its graph and key.
#[derive(Clone)]
pub(crate) struct NodeRef<T: Element> {
    pub graph: Rc<GraphInner<T>>,
    pub key: NodeKey,
}

/// A value in a computation: a tensor, plus (if it requires grad) the graph
/// node that produced it.
///
/// Operators and methods on `Var` record ops define-by-run. A `Var` that does
/// not require grad (data, or anything computed under [`crate::no_grad`]) is a
/// plain constant and records nothing.
#[derive(Clone)]
pub struct Var<T: Element = f32> {
    value: Tensor<T>,
    pub(crate) node: Option<NodeRef<T>>,
}

impl<T: Element> Var<T> {
    /// A constant: no graph node, never receives a gradient.
    pub fn constant(value: Tensor<T>) -> Self {
        Var { value, node: None }
    }

    pub(crate) fn from_node(value: Tensor<T>, node: NodeRef<T>) -> Self {
        Var {
            value,
            node: Some(node),
        }
    }

    /// Records `op` applied to `inputs` with the already computed forward
    /// `value`, and returns the output. This is how every op, built-in or
    /// custom, enters the graph.
    ///
    /// Nothing is recorded (the result is a constant) when no input requires
    /// grad or grad mode is off. Inputs from two different graphs are an error.
    #[track_caller]
    #[inline]
    pub fn from_op(op: impl Op<T>, inputs: &[&Var<T>], value: Tensor<T>) -> Result<Var<T>> {
        // Constants in, constant out: the common case inside backward
        // formulas, kept to a few instructions (anomaly mode checks every value).
        let anomaly = crate::anomaly::is_anomaly_enabled();
        if !anomaly && inputs.iter().all(|v| v.node.is_none()) {
            return Ok(Var::constant(value));
        }
        Var::record(op, inputs, value, anomaly)
    }

    /// [`Var::from_op`] when an input requires grad or anomaly mode is on.
    #[track_caller]
    fn record(
        op: impl Op<T>,
        inputs: &[&Var<T>],
        value: Tensor<T>,
        anomaly: bool,
    ) -> Result<Var<T>> {
        let site = if anomaly {
            Some(anomaly_check_forward(
                op.name(),
                &value,
                inputs,
                std::panic::Location::caller(),
            )?)
        } else {
            None
        };
        let mut graph: Option<&Rc<GraphInner<T>>> = None;
        for v in inputs {
            if let Some(n) = &v.node {
                match graph {
                    None => graph = Some(&n.graph),
                    Some(g) if Rc::ptr_eq(g, &n.graph) => {}
                    Some(_) => {
                        return Err(Error::new(
                            op.name().to_string(),
                            ErrorKind::ForeignGraph,
                            "operands belong to different graphs",
                        ))
                    }
                }
            }
        }
        let graph = match graph {
            Some(g) if is_grad_enabled() => g.clone(),
            _ => return Ok(Var::constant(value)),
        };
        let mut saved: SmallVec<[Input<T>; 2]> = SmallVec::new();
        {
            let nodes = graph.nodes.borrow();
            for v in inputs {
                saved.push(match &v.node {
                    // A node freed by an earlier backward keeps its key (seq 0):
                    // backpropagating into it later reports the freed graph.
                    Some(n) => Input::Node {
                        key: n.key,
                        seq: nodes.get(n.key).map_or(0, |node| node.seq),
                    },
                    None => Input::Const(Box::new(v.value.clone())),
                });
            }
        }
        let out_value = value.clone();
        let key = graph.insert(|seq| Node {
            op: Some(Box::new(op)),
            inputs: saved,
            value: out_value,
            seq,
            extra: site.map(|site| {
                Box::new(Extra {
                    site: Some(site),
                    ..Default::default()
                })
            }),
        });
        Ok(Var::from_node(value, NodeRef { graph, key }))
    }

    /// The value.
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    pub(crate) fn value_mut(&mut self) -> &mut Tensor<T> {
        &mut self.value
    }

    /// Consumes the handle, returning its value.
    pub fn into_value(self) -> Tensor<T> {
        self.value
    }

    /// The value's shape.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.value.numel()
    }

    /// The single element of a one-element value.
    #[track_caller]
    pub fn item(&self) -> T {
        self.value.item()
    }

    /// Whether this value is part of a graph (gradients can flow to it).
    pub fn requires_grad(&self) -> bool {
        self.node.is_some()
    }

    /// The graph this value lives in, if it requires grad.
    pub fn graph(&self) -> Option<Graph<T>> {
        self.node.as_ref().map(|n| Graph {
            inner: n.graph.clone(),
        })
    }

    /// The node key, if any (for inspection tools).
    pub fn key(&self) -> Option<NodeKey> {
        self.node.as_ref().map(|n| n.key)
    }

    /// The same value cut off from the graph (PyTorch's `detach`).
    #[track_caller]
    pub fn detach(&self) -> Var<T> {
        Var::constant(self.value.clone())
    }

    /// True for leaves (values created with `Graph::leaf` or `Graph::param`).
    pub fn is_leaf(&self) -> bool {
        self.node.as_ref().is_some_and(|n| {
            n.graph
                .nodes
                .borrow()
                .get(n.key)
                .is_some_and(|node| node.leaf().is_some())
        })
    }

    /// The gradient accumulated into this leaf by `backward` (for a parameter
    /// leaf, the parameter's gradient). `None` for non-leaves and untouched leaves.
    pub fn grad(&self) -> Option<Tensor<T>> {
        let n = self.node.as_ref()?;
        let nodes = n.graph.nodes.borrow();
        let leaf = nodes.get(n.key)?.leaf()?;
        match &leaf.param {
            Some(p) => p.grad(),
            None => leaf.grad.clone(),
        }
    }

    /// Clears this leaf's accumulated gradient.
    pub fn zero_grad(&self) {
        if let Some(n) = &self.node {
            let mut nodes = n.graph.nodes.borrow_mut();
            if let Some(leaf) = nodes.get_mut(n.key).and_then(|node| node.leaf_mut()) {
                match &leaf.param {
                    Some(p) => p.zero_grad(),
                    None => leaf.grad = None,
                }
            }
        }
    }

    /// Names the node (shown by summaries and DOT export); returns `self`.
    pub fn named(self, name: impl Into<String>) -> Self {
        if let Some(n) = &self.node {
            if let Some(node) = n.graph.nodes.borrow_mut().get_mut(n.key) {
                node.extra_mut().name = Some(name.into().into_boxed_str());
            }
        }
        self
    }
}

impl<T: Element> std::fmt::Debug for Var<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Var({:?}{})",
            self.value,
            if self.requires_grad() {
                ", requires_grad"
            } else {
                ""
            }
        )
    }
}

/// Anomaly mode's forward check, kept out of line so `from_op` stays small.
#[cold]
#[inline(never)]
fn anomaly_check_forward<T: Element>(
    op: &str,
    value: &Tensor<T>,
    inputs: &[&Var<T>],
    site: &'static std::panic::Location<'static>,
) -> Result<&'static std::panic::Location<'static>> {
    crate::anomaly::check_finite(
        op,
        "forward",
        "value",
        value,
        Some(site),
        inputs.iter().map(|v| v.value()),
    )?;
    Ok(site)
}

/// Removes a gradient hook when [`HookHandle::remove`] is called.
pub struct HookHandle<T: Element> {
    graph: std::rc::Weak<GraphInner<T>>,
    key: NodeKey,
    id: u64,
}

impl<T: Element> HookHandle<T> {
    /// Unregisters the hook (a no-op if its graph is gone).
    pub fn remove(self) {
        if let Some(graph) = self.graph.upgrade() {
            if let Some(e) = graph
                .nodes
                .borrow_mut()
                .get_mut(self.key)
                .and_then(|n| n.extra.as_mut())
            {
                e.hooks.retain(|(id, _)| *id != self.id);
            }
        }
    }
}

impl<T: Element> Var<T> {
    /// Registers a gradient hook, like `torch.Tensor.register_hook`: during
    /// backward it is called with ∂L/∂self once that gradient is complete, and
    /// may return a replacement (of the same shape) or `None` to keep it.
    /// Hooks run in registration order. Errors if this value requires no grad.
    ///
    /// ```
    /// use chainrule_tape::{Graph, Tensor};
    /// let g = Graph::new();
    /// let x = g.leaf(Tensor::scalar(3.0f64));
    /// let h = &x * &x;
    /// let handle = h.try_register_hook(|grad| Some(grad * 10.0)).unwrap(); // scale ∂L/∂h
    /// (&h * 2.0).backward();
    /// assert_eq!(x.grad().unwrap().item(), 120.0); // 2 · 10 · 2x
    /// # let _ = handle;
    /// ```
    pub fn try_register_hook(
        &self,
        hook: impl FnMut(&Var<T>) -> Option<Var<T>> + 'static,
    ) -> Result<HookHandle<T>> {
        let n = self.node.as_ref().ok_or_else(|| {
            Error::new(
                "register_hook",
                ErrorKind::Argument,
                "this value does not require grad (it has no graph node)",
            )
        })?;
        let id = n.graph.next_hook.get();
        n.graph.next_hook.set(id + 1);
        let mut nodes = n.graph.nodes.borrow_mut();
        let node = nodes.get_mut(n.key).ok_or_else(|| {
            Error::new(
                "register_hook",
                ErrorKind::GraphFreed,
                "the graph behind this value was freed by an earlier backward",
            )
        })?;
        node.extra_mut().hooks.push((id, Box::new(hook)));
        Ok(HookHandle {
            graph: Rc::downgrade(&n.graph),
            key: n.key,
            id,
        })
    }

    /// [`Var::try_register_hook`], panicking on error.
    #[track_caller]
    pub fn register_hook(
        &self,
        hook: impl FnMut(&Var<T>) -> Option<Var<T>> + 'static,
    ) -> HookHandle<T> {
        crate::error::or_panic(self.try_register_hook(hook))
    }
}
