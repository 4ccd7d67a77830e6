//! Memory stays flat in an `nn` training loop (Conv2d, BatchNorm with its
//! running statistics, ReLU, max-pool, dropout, Linear; Adam).
//!
//! This file holds one test, so it has its test binary to itself and can
//! count the heap of the whole process: convolution and pooling run on
//! rayon's pool, and rayon frees its job-queue blocks on the worker thread
//! that drains them (a per-thread count, as in `memory.rs`, would see the
//! main thread "grow" by one 1,520-byte block every 63 parallel calls).

use chainrule::nn::*;
use chainrule::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct CountingAllocator;

/// Bytes allocated minus bytes freed by the whole process.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping is one atomic add, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn an_nn_training_loop_with_batchnorm_dropout_and_adam_is_flat() {
    let mut rng = StdRng::seed_from_u64(4);
    let pad1 = ConvOptions {
        padding: 1,
        ..Default::default()
    };
    let model = Sequential::<f32>::new()
        .push(Conv2d::new(1, 4, 3, pad1, &mut rng))
        .push(BatchNorm::new_2d(4, BatchNormOptions::default()))
        .push(Relu)
        .push(MaxPool2d::new(2))
        .push(Dropout::new(0.25, 9))
        .push(Flatten)
        .push(Linear::new(4 * 4 * 4, 3, &mut rng));
    let mut opt = Adam::new(model.parameters(), AdamConfig::default()).unwrap();
    let x = Tensor::randn([6, 1, 8, 8], &mut rng);
    let y = Indices::vector(vec![0, 1, 2, 0, 1, 2]);
    let mut step = || {
        let g = Graph::new();
        let logits = model.forward(&g, &g.input(x.clone()));
        let loss = loss::cross_entropy(&logits, &y, &ClassLossOptions::default());
        loss.backward();
        opt.step().unwrap();
        opt.zero_grad();
        loss.item()
    };
    // Warm-up: Adam's moment buffers, the recycled arena and rayon's pool.
    let first = step();
    for _ in 0..20 {
        step();
    }
    let baseline = LIVE_BYTES.load(Ordering::SeqCst);
    let (mut last, mut worst) = (first, 0);
    for _ in 0..600 {
        last = step();
        worst = worst.max(LIVE_BYTES.load(Ordering::SeqCst) - baseline);
    }
    // rayon's queues free retired blocks a little later than they stop using
    // them, so the count may sit a block or two above the baseline; a leak
    // of one small tensor (≥ 24 bytes) per step would pass 14 KB in 600 steps.
    assert!(
        worst < 4096,
        "live heap grew by {worst} bytes over 600 steps"
    );
    assert!(last < first, "the loop trains: {first} -> {last}");
}
