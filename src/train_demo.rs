//! `chainrule train`, interim version: full-batch gradient descent of a
//! 1-16-1 tanh network on a sine curve, using only the tape and ops crates.
//! Fashion-MNIST training replaces this when the nn, optim and data crates land.

use chainrule::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use std::process::ExitCode;

/// Options of `chainrule train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Full-batch gradient-descent steps.
    #[arg(long, default_value_t = 3000)]
    epochs: usize,
    /// Learning rate η in w ← w − η·∂E/∂w.
    #[arg(long, default_value_t = 0.1)]
    lr: f32,
    /// Seed for the initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// U(±1/√fan_in), PyTorch's default for Linear weights and biases.
fn uniform_init(shape: &[usize], fan_in: usize, rng: &mut StdRng) -> Parameter<f32> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Parameter::new(Tensor::rand_uniform(shape, -bound, bound, rng))
}

pub fn run(args: &TrainArgs) -> ExitCode {
    println!("chainrule train: Fashion-MNIST training arrives with the data/training issue;");
    println!(
        "for now this fits y = sin(x) on [-π, π] with a 1-16-1 tanh network by gradient descent."
    );
    let mut rng = StdRng::seed_from_u64(args.seed);
    const N: usize = 64;
    let xs: Vec<f32> = (0..N)
        .map(|i| -std::f32::consts::PI + 2.0 * std::f32::consts::PI * i as f32 / (N - 1) as f32)
        .collect();
    let x = Tensor::from_vec([N, 1], xs.clone());
    let target = Tensor::from_vec([N, 1], xs.iter().map(|v| v.sin()).collect());
    let params = [
        uniform_init(&[1, 16], 1, &mut rng),
        uniform_init(&[16], 1, &mut rng),
        uniform_init(&[16, 1], 16, &mut rng),
        uniform_init(&[1], 16, &mut rng),
    ];
    let mut loss_value = f32::NAN;
    for epoch in 0..=args.epochs {
        let g = Graph::new();
        let [w1, b1, w2, b2] = params.each_ref().map(|p| g.param(p));
        let hidden = (&g.input(x.clone()).matmul(&w1) + &b1).tanh();
        let y = &hidden.matmul(&w2) + &b2;
        let loss = (&y - &g.input(target.clone())).square().mean_all();
        loss_value = loss.item();
        if epoch % (args.epochs / 10).max(1) == 0 {
            println!("epoch {epoch:>5}  mse {loss_value:.6}");
        }
        if epoch == args.epochs {
            break;
        }
        loss.backward();
        for p in &params {
            p.update(|value, grad| {
                let grad = grad.expect("every parameter is used");
                for (v, g) in value.data_mut().iter_mut().zip(grad.data()) {
                    *v -= args.lr * g;
                }
            });
            p.zero_grad();
        }
    }
    if loss_value.is_finite() {
        println!("final mse {loss_value:.6}");
        ExitCode::SUCCESS
    } else {
        eprintln!("chainrule train: the loss diverged ({loss_value}); try a smaller --lr");
        ExitCode::FAILURE
    }
}
