//! Memory is flat in a training loop: nothing of a step outlives it.
//!
//! A counting global allocator tracks the bytes live on each thread, and the
//! loops below assert that after every one of 10,000 steps the live heap and
//! the graph's node count are exactly back at their post-warm-up baseline.
//! (burn and candle both shipped tape leaks; this is the regression test.)

use chainrule::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread.
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + delta));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping touches only a const-initialised thread-local Cell, which
// never allocates and so cannot recurse into this allocator.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn live_bytes() -> isize {
    LIVE_BYTES.with(|c| c.get())
}

/// A 4-16-1 tanh network: [w1, b1, w2, b2].
fn params(rng: &mut StdRng) -> Vec<Parameter<f32>> {
    [[4, 16].as_slice(), &[16], &[16, 1], &[1]]
        .iter()
        .map(|s| Parameter::new(Tensor::rand_uniform(s, -0.5, 0.5, rng)))
        .collect()
}

/// The network's parameters and a batch (x: [8, 4], y: [8, 1]) from a seed.
fn setup(seed: u64) -> (Vec<Parameter<f32>>, Tensor<f32>, Tensor<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ps = params(&mut rng);
    let x = Tensor::randn([8, 4], &mut rng);
    let y = Tensor::randn([8, 1], &mut rng);
    (ps, x, y)
}

fn loss_of(g: &Graph<f32>, p: &[Var<f32>], x: &Tensor<f32>, y: &Tensor<f32>) -> Var<f32> {
    let h = (&g.input(x.clone()).matmul(&p[0]) + &p[1]).tanh();
    let out = &h.matmul(&p[2]) + &p[3];
    (&out - &g.input(y.clone())).square().mean_all()
}

fn sgd_step(ps: &[Parameter<f32>], lr: f32) {
    for p in ps {
        p.update(|v, g| {
            for (a, b) in v.data_mut().iter_mut().zip(g.unwrap().data()) {
                *a -= lr * b;
            }
        });
        p.zero_grad();
    }
}

#[test]
fn ten_thousand_training_steps_leave_the_heap_exactly_where_it_was() {
    let (ps, x, y) = setup(1);
    let step = || {
        let g = Graph::new();
        let vars: Vec<Var<f32>> = ps.iter().map(|p| g.param(p)).collect();
        let loss = loss_of(&g, &vars, &x, &y);
        loss.backward();
        assert_eq!(
            g.len(),
            4,
            "after backward only the parameter leaves remain"
        );
        sgd_step(&ps, 0.05);
        loss.item()
    };
    let first = step(); // warm-up: the thread's recycled arena is allocated here
    let baseline = live_bytes();
    let mut last = first;
    for i in 0..10_000 {
        last = step();
        assert_eq!(
            live_bytes(),
            baseline,
            "step {i} left {} bytes behind",
            live_bytes() - baseline
        );
    }
    assert!(
        last < first,
        "the loop really trains: loss {first} -> {last}"
    );
}

#[test]
fn a_long_lived_graph_returns_to_its_leaves_after_every_backward() {
    let (ps, x, y) = setup(2);
    let g = Graph::new();
    let vars: Vec<Var<f32>> = ps.iter().map(|p| g.param(p)).collect();
    let mut baseline = None;
    for i in 0..10_000 {
        loss_of(&g, &vars, &x, &y).backward();
        assert_eq!(g.len(), 4, "step {i}: live nodes");
        for p in &ps {
            p.zero_grad();
        }
        let now = live_bytes();
        assert_eq!(*baseline.get_or_insert(now), now, "step {i}: live bytes");
    }
}

#[test]
fn higher_order_steps_are_flat_too() {
    // A gradient-penalty step: L = loss + ‖∂loss/∂w1‖², needing create_graph.
    let (ps, x, y) = setup(3);
    let step = || {
        let g = Graph::new();
        let vars: Vec<Var<f32>> = ps.iter().map(|p| g.param(p)).collect();
        let loss = loss_of(&g, &vars, &x, &y);
        let [dw1] = grad(&loss, [&vars[0]], true);
        let total = &loss + &dw1.square().sum_all();
        total.backward();
        sgd_step(&ps, 0.01);
    };
    step();
    let baseline = live_bytes();
    for i in 0..1_000 {
        step();
        assert_eq!(live_bytes(), baseline, "step {i}");
    }
}
