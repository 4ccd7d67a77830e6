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
use slotmap::{SecondaryMap, SlotMap};
use smallvec::SmallVec;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::BinaryHeap;
use std::rc::Rc;

slotmap::new_key_type! {
    /// A node's key in its graph's arena.
    pub struct NodeKey;
}

/// One input of a recorded op: the producing node (whose value is read from
/// the arena when backward needs it), or a constant's saved value.
pub(crate) enum Input<T: Element> {
    Node { key: NodeKey, seq: u64 },
    Const(Box<Tensor<T>>),
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
    /// Rarely used per-node data, boxed so the common node stays small.
    pub extra: Option<Box<Extra<T>>>,
}

/// A gradient hook: reads the gradient flowing into a node and may replace it.
pub(crate) type Hook<T> = Box<dyn FnMut(&Var<T>) -> Option<Var<T>>>;

/// Per-node data most nodes do not have.
pub(crate) struct Extra<T: Element> {
    /// Set for leaves: where the gradient goes.
    pub leaf: Option<Leaf<T>>,
    /// A user-given name for summaries and DOT export.
    pub name: Option<Box<str>>,
    /// Gradient hooks with their ids, run in registration order.
    pub hooks: Vec<(u64, Hook<T>)>,
    /// Where the node was created (recorded in anomaly mode).
    pub site: Option<&'static std::panic::Location<'static>>,
    /// The node's total gradient from the last backward (with `retain_grads`).
    pub grad: Option<Tensor<T>>,
}

impl<T: Element> Default for Extra<T> {
    fn default() -> Self {
        Extra {
            leaf: None,
            name: None,
            hooks: Vec::new(),
            site: None,
            grad: None,
        }
    }
}

impl<T: Element> Node<T> {
    pub fn leaf(&self) -> Option<&Leaf<T>> {
        self.extra.as_ref().and_then(|e| e.leaf.as_ref())
    }

    pub fn leaf_mut(&mut self) -> Option<&mut Leaf<T>> {
        self.extra.as_mut().and_then(|e| e.leaf.as_mut())
    }

    /// The node's extra data, created on first use.
    pub fn extra_mut(&mut self) -> &mut Extra<T> {
        self.extra.get_or_insert_with(Default::default)
    }

    /// The display name, if any.
    pub fn name(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.name.as_deref())
    }
}

/// Per-backward working memory, kept with the graph so that repeated
/// backward passes (and, through the thread's pool, later graphs) reuse it.
pub(crate) struct Scratch<T: Element> {
    pub grads: SecondaryMap<NodeKey, Var<T>>,
    pub heap: BinaryHeap<(u64, NodeKey)>,
}

/// The shared state behind a [`Graph`] handle.
pub(crate) struct GraphInner<T: Element> {
    pub nodes: RefCell<SlotMap<NodeKey, Node<T>>>,
    pub next_seq: Cell<u64>,
    pub scratch: RefCell<Scratch<T>>,
    /// Keep every node and its gradient through backward (for inspection).
    pub retain_grads: Cell<bool>,
    /// Source of hook ids.
    pub next_hook: Cell<u64>,
}

impl<T: Element> GraphInner<T> {
    pub fn insert(&self, node_of: impl FnOnce(u64) -> Node<T>) -> NodeKey {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        self.nodes.borrow_mut().insert(node_of(seq))
    }
}

/// Arenas at most this many slots large are kept for reuse when their graph
/// is dropped (about 40 MB of nodes); larger one-off graphs give their memory back.
const RECYCLE_MAX_SLOTS: usize = 1 << 18;

/// An emptied arena and scratch space, kept per thread for the next graph.
struct Recycled<T: Element> {
    nodes: SlotMap<NodeKey, Node<T>>,
    scratch: Scratch<T>,
}

thread_local! {
    /// At most one recycled arena per element type. A training loop makes a
    /// graph per step; reusing the previous step's capacity avoids regrowing
    /// (and page-faulting) the arena every step.
    static POOL: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

impl<T: Element> Drop for GraphInner<T> {
    fn drop(&mut self) {
        let mut nodes = std::mem::take(self.nodes.get_mut());
        if nodes.capacity() > RECYCLE_MAX_SLOTS {
            return;
        }
        nodes.clear();
        let mut scratch = std::mem::replace(
            self.scratch.get_mut(),
            Scratch {
                grads: SecondaryMap::new(),
                heap: BinaryHeap::new(),
            },
        );
        scratch.grads.clear();
        scratch.heap.clear();
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if !pool.iter().any(|b| b.is::<Recycled<T>>()) {
                pool.push(Box::new(Recycled { nodes, scratch }));
            }
        });
    }
}

fn take_recycled<T: Element>() -> Option<Recycled<T>> {
    POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        let i = pool.iter().position(|b| b.is::<Recycled<T>>())?;
        pool.swap_remove(i)
            .downcast::<Recycled<T>>()
            .ok()
            .map(|b| *b)
    })
    .ok()
    .flatten()
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
        let (nodes, scratch) = match take_recycled::<T>() {
            Some(r) => (r.nodes, r.scratch),
            None => (
                SlotMap::with_key(),
                Scratch {
                    grads: SecondaryMap::new(),
                    heap: BinaryHeap::new(),
                },
            ),
        };
        Graph {
            inner: Rc::new(GraphInner {
                nodes: RefCell::new(nodes),
                next_seq: Cell::new(0),
                scratch: RefCell::new(scratch),
                retain_grads: Cell::new(false),
                next_hook: Cell::new(0),
            }),
        }
    }

    fn add_leaf(
        &self,
        value: Tensor<T>,
        param: Option<Parameter<T>>,
        name: Option<Box<str>>,
    ) -> Var<T> {
        let key = self.inner.insert(|seq| Node {
            op: None,
            inputs: SmallVec::new(),
            value: value.clone(),
            seq,
            extra: Some(Box::new(Extra {
                leaf: Some(Leaf { grad: None, param }),
                name,
                ..Default::default()
            })),
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
        self.add_leaf(value, None, Some(name.into().into_boxed_str()))
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
