//! A custom model written define-by-run: a loop that applies one shared
//! layer several times (weight sharing) and a branch on the data, trained
//! with Adam. The only boilerplate is listing the parameters.
//!
//!     cargo run --release --example custom_module

use chainrule::nn::{join, Linear, Module};
use chainrule::prelude::*;
use rand::SeedableRng;

/// h ← tanh(W·h + b), `steps` times with the same W and b, then a readout.
struct Unrolled {
    cell: Linear<f64>,
    readout: Linear<f64>,
    steps: usize,
}

impl Module<f64> for Unrolled {
    fn try_forward(
        &self,
        g: &Graph<f64>,
        x: &Var<f64>,
    ) -> chainrule::tape::error::Result<Var<f64>> {
        let mut h = x.clone();
        for _ in 0..self.steps {
            // Residual branch only while the state is small: ordinary Rust control flow.
            let update = self.cell.try_forward(g, &h)?.try_tanh()?;
            h = if h.value().data().iter().all(|v| v.abs() < 3.0) {
                &h + &update
            } else {
                update
            };
        }
        self.readout.try_forward(g, &h)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<f64>)) {
        self.cell.visit_parameters(&join(prefix, "cell"), f);
        self.readout.visit_parameters(&join(prefix, "readout"), f);
    }
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let model = Unrolled {
        cell: Linear::new(2, 2, &mut rng),
        readout: Linear::new(2, 1, &mut rng),
        steps: 4,
    };
    // Learn y = x0·x1 on a grid.
    let xs: Vec<f64> = (0..64)
        .flat_map(|i| [(i % 8) as f64 / 4.0 - 1.0, (i / 8) as f64 / 4.0 - 1.0])
        .collect();
    let ys: Vec<f64> = xs.chunks(2).map(|p| p[0] * p[1]).collect();
    let (x, y) = (Tensor::from_vec([64, 2], xs), Tensor::from_vec([64, 1], ys));
    let mut opt = Adam::new(
        model.parameters(),
        AdamConfig {
            lr: 0.02,
            ..Default::default()
        },
    )
    .unwrap();
    println!("{}", model.summary(&[64, 2]).unwrap());
    for step in 0..=600 {
        let g = Graph::new();
        let pred = model.forward(&g, &g.input(x.clone()));
        let loss = loss::mse_loss(&pred, &g.input(y.clone()), Reduction::Mean);
        loss.backward();
        opt.step().unwrap();
        opt.zero_grad();
        if step % 100 == 0 {
            println!("step {step:>3}  mse {:.5}", loss.item());
        }
    }
    println!(
        "the cell's weight was used {} times per forward pass and trained once per step",
        model.steps
    );
}
