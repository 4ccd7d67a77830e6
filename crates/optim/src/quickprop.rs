//! Quickprop (Fahlman 1988), with the safeguards of FANN's implementation.

use crate::hyper::{check, hyperparameters};
use crate::rule::{optimizer_impl, step_each};
use crate::StateLayout;
use chainrule_tape::Element;

hyperparameters! {
    /// Quickprop hyperparameters (FANN's defaults, except that ε is not divided
    /// by the number of samples: chainrule's losses are usually means already).
    pub struct QuickpropConfig for "Quickprop" {
        /// Gradient-step rate ε (FANN: learning rate 0.7 / number of samples).
        lr: f64 = 0.7 => check::non_negative,
        /// Maximum growth factor μ of a step over the previous one (1.75).
        mu: f64 = 1.75 => check::non_negative,
        /// Weight decay d folded into the slope: S = −(∂E/∂w + d·w) (1e-4).
        decay: f64 = 1e-4 => check::non_negative,
        /// Previous steps smaller than this count as zero (1e-3).
        min_step: f64 = 1e-3 => check::non_negative,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// Quickprop: each weight jumps to the minimum of the parabola through its
    /// last two slopes, Δw(t) = S(t)/(S(t−1) − S(t))·Δw(t−1), where S = −∂E/∂w − d·w.
    /// Safeguards (FANN `fann_update_weights_quickprop`): after a step near zero
    /// (|Δw| ≤ min_step) take the gradient step ε·S; if the slope has not shrunk
    /// below μ/(1+μ) of the previous one, take μ·Δw(t−1) instead of the parabola
    /// step; and add ε·S while the slope still points the way of the last step.
    Quickprop,
    QuickpropConfig,
    StateLayout {
        buffers: &["prev_step", "prev_slope"],
        optional: &[],
        scalars: &[],
    }
);

impl<T: Element> Quickprop<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["prev_step", "prev_slope"],
            |c| (c.maximize, 0.0),
            |_, _| 0.0,
            |c, _, b, _, x, grad| {
                let (eps, mu, decay, min_step) = (c.lr, c.mu, c.decay, c.min_step);
                let shrink = mu / (1.0 + mu);
                let (prev_step, prev_slope) = b.split_at_mut(1);
                for i in 0..x.len() {
                    let w = x[i].as_f64();
                    let slope = -(grad[i].as_f64() + decay * w);
                    let (dw, ds) = (prev_step[0][i].as_f64(), prev_slope[0][i].as_f64());
                    let mut step = 0.0;
                    if dw > min_step || dw < -min_step {
                        let same_way = if dw > 0.0 { slope > 0.0 } else { slope < 0.0 };
                        if same_way {
                            step += eps * slope;
                        }
                        let still_steep = if dw > 0.0 {
                            slope > shrink * ds
                        } else {
                            slope < shrink * ds
                        };
                        step += if still_steep {
                            mu * dw
                        } else {
                            dw * slope / (ds - slope)
                        };
                    } else {
                        step += eps * slope;
                    }
                    x[i] = T::from_f64(w + step);
                    prev_step[0][i] = T::from_f64(step);
                    prev_slope[0][i] = T::from_f64(slope);
                }
            },
        );
    }
}
