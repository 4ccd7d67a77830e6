//! The graph: an arena of nodes in a `slotmap`, one per recorded op or leaf.
//!
//! A node records its op, its inputs (their node keys and saved values), its
//! value and a sequence number in creation order. Inputs always have smaller
//! sequence numbers than the ops that use them, so "highest sequence number
//! first" is a topological order for backward and no graph search is needed.

use crate::element::Element;
use crate::op::Op;
use crate::param::Parameter;
use crate::tensor::Tensor;
use crate::var::{NodeRef, Var};
use slotmap::SlotMap;
use smallvec::SmallVec;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

slotmap::new_key_type! {
    /// A node's key in its graph's arena.
    pub struct NodeKey;
}

/// One input of a recorded op: the producing node (absent for constants)
/// with its sequence number, and the value the op saw.
#[derive(Clone)]
pub(crate) struct Input<T: Element> {
    pub key: Option<(NodeKey, u64)>,
    pub value: Tensor<T>,
}

/// What a leaf node adds: where its gradient goes.
pub(crate) struct Leaf<T: Element> {
    /// Gradient accumulated by backward (graph leaves).
    pub grad: Option<Tensor<T>>,
    /// The parameter the gradient is accumulated into instead, if any.
    pub param: Option<Parameter<T>>,
}

/// A node of the graph.
pub(crate) struct Node<T: Element> {
    /// The op that produced this node (`None` for leaves, or while its
    /// backward runs).
    pub op: Option<Box<dyn Op<T>>>,
    pub inputs: SmallVec<[Input<T>; 2]>,
    pub value: Tensor<T>,
    pub seq: u64,
    pub leaf: Option<Box<Leaf<T>>>,
    /// A user-given name for summaries and DOT export.
    pub name: Option<String>,
}

/// The shared state behind a [`Graph`] handle.
pub(crate) struct GraphInner<T: Element> {
    pub nodes: RefCell<SlotMap<NodeKey, Node<T>>>,
    pub next_seq: Cell<u64>,
}

impl<T: Element> GraphInner<T> {
    pub fn insert(&self, node_of: impl FnOnce(u64) -> Node<T>) -> NodeKey {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        self.nodes.borrow_mut().insert(node_of(seq))
    }
}

/// A define-by-run computation graph: the arena for one step's nodes.
///
/// Make one per training step (or per expression) and drop it afterwards;
/// everything recorded on it goes with it. `backward` also frees the nodes it
/// walks (unless asked to retain them), so even a long-lived graph does not
/// grow across steps.
///
/// ```
/// use chainrule_tape::{Graph, Tensor};
/// let g = Graph::new();
/// let a = g.leaf(Tensor::scalar(3.0f64));
/// let b = &a * &a + &a;          // b = a² + a
/// b.backward();
/// assert_eq!(a.grad().unwrap().item(), 7.0);  // 2a + 1
/// ```
pub struct Graph<T: Element = f32> {
    pub(crate) inner: Rc<GraphInner<T>>,
}

impl<T: Element> Clone for Graph<T> {
    fn clone(&self) -> Self {
        Graph {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Element> Default for Graph<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Element> Graph<T> {
    /// An empty graph.
    pub fn new() -> Self {
        Graph {
            inner: Rc::new(GraphInner {
                nodes: RefCell::new(SlotMap::with_key()),
                next_seq: Cell::new(0),
            }),
        }
    }

    fn add_leaf(
        &self,
        value: Tensor<T>,
        param: Option<Parameter<T>>,
        name: Option<String>,
    ) -> Var<T> {
        let key = self.inner.insert(|seq| Node {
            op: None,
            inputs: SmallVec::new(),
            value: value.clone(),
            seq,
            leaf: Some(Box::new(Leaf { grad: None, param })),
            name,
        });
        Var::from_node(
            value,
            NodeRef {
                graph: self.inner.clone(),
                key,
            },
        )
    }

    /// A leaf that requires grad: backward accumulates into its [`Var::grad`].
    pub fn leaf(&self, value: Tensor<T>) -> Var<T> {
        self.add_leaf(value, None, None)
    }

    /// A named leaf that requires grad (the name shows in summaries and DOT).
    pub fn named_leaf(&self, name: impl Into<String>, value: Tensor<T>) -> Var<T> {
        self.add_leaf(value, None, Some(name.into()))
    }

    /// A leaf for a [`Parameter`]: backward accumulates into `p.grad()`.
    /// A frozen parameter (`requires_grad == false`) enters as a constant.
    pub fn param(&self, p: &Parameter<T>) -> Var<T> {
        if p.requires_grad() {
            self.add_leaf(p.value(), Some(p.clone()), None)
        } else {
            Var::constant(p.value())
        }
    }

    /// An input that does not require grad (data, targets). Records nothing.
    pub fn input(&self, value: Tensor<T>) -> Var<T> {
        Var::constant(value)
    }

    /// The number of live nodes in the arena.
    pub fn len(&self) -> usize {
        self.inner.nodes.borrow().len()
    }

    /// True when the arena holds no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when both handles are the same graph.
    pub fn same_as(&self, other: &Graph<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// The op names of the live nodes in creation order (`"leaf"` for leaves).
    pub fn recorded_ops(&self) -> Vec<String> {
        let nodes = self.inner.nodes.borrow();
        let mut v: Vec<(u64, String)> = nodes
            .values()
            .map(|n| {
                (
                    n.seq,
                    n.op.as_ref()
                        .map_or_else(|| "leaf".to_string(), |o| o.name().to_string()),
                )
            })
            .collect();
        v.sort_unstable_by_key(|(s, _)| *s);
        v.into_iter().map(|(_, name)| name).collect()
    }
}
