//! Every activation as a module (`torch.nn.ReLU` is [`Relu`], …), for `Sequential`.
//!
//! Type names follow Rust's casing (acronyms as one word: `Relu`, `Gelu`);
//! [`Module::describe`] prints PyTorch's (`ReLU()`).

use crate::module::Module;
use chainrule_ops::{GeluApproximation, VarOps};
use chainrule_tape::error::Result;
use chainrule_tape::{Element, Graph, Parameter, Var};

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $label:expr, |$s:ident, $x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name;
        activation!(@impl $name, $label, |$s, $x| $body);
    };
    ($(#[$doc:meta])* $name:ident { $($field:ident : $fty:ty),* }, $label:expr, |$s:ident, $x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name { $(#[doc = "Parameter of the activation."] pub $field: $fty),* }
        activation!(@impl $name, $label, |$s, $x| $body);
    };
    (@impl $name:ident, $label:expr, |$s:ident, $x:ident| $body:expr) => {
        impl<T: Element> Module<T> for $name {
            fn try_forward(&self, _g: &Graph<T>, $x: &Var<T>) -> Result<Var<T>> {
                let $s = self;
                let _ = $s;
                $body
            }
            fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Parameter<T>)) {}
            fn describe(&self) -> String {
                let $s = self;
                let _ = $s;
                $label
            }
        }
    };
}

activation!(/// max(x, 0).
    Relu, "ReLU()".into(), |s, x| x.try_relu());
activation!(/// x for x > 0, slope·x otherwise (PyTorch's default slope: 0.01).
    LeakyRelu { slope: f64 }, format!("LeakyReLU(negative_slope={})", s.slope), |s, x| x.try_leaky_relu(T::from_f64(s.slope)));
activation!(/// x for x > 0, α(eˣ − 1) otherwise.
    Elu { alpha: f64 }, format!("ELU(alpha={})", s.alpha), |s, x| x.try_elu(T::from_f64(s.alpha)));
activation!(/// Self-normalising ELU.
    Selu, "SELU()".into(), |s, x| x.try_selu());
activation!(/// x·Φ(x) or its tanh approximation.
    Gelu { approximate: GeluApproximation }, format!("GELU(approximate='{}')", match s.approximate {
        GeluApproximation::None => "none",
        GeluApproximation::Tanh => "tanh",
    }), |s, x| x.try_gelu(s.approximate));
activation!(/// (1/β)·ln(1 + e^(βx)), linear above the threshold (PyTorch: β = 1, threshold = 20).
    Softplus { beta: f64, threshold: f64 }, format!("Softplus(beta={}, threshold={})", s.beta, s.threshold), |s, x| x.try_softplus(T::from_f64(s.beta), T::from_f64(s.threshold)));
activation!(/// x·σ(x).
    Silu, "SiLU()".into(), |s, x| x.try_silu());
activation!(/// x·tanh(softplus(x)).
    Mish, "Mish()".into(), |s, x| x.try_mish());
activation!(/// clamp(x, min, max) with zero gradient at the bounds (PyTorch: −1, 1).
    Hardtanh { min: f64, max: f64 }, format!("Hardtanh(min_val={}, max_val={})", s.min, s.max), |s, x| x.try_hardtanh(T::from_f64(s.min), T::from_f64(s.max)));
activation!(/// x/(1 + |x|).
    Softsign, "Softsign()".into(), |s, x| x.try_softsign());
activation!(/// ln σ(x).
    LogSigmoid, "LogSigmoid()".into(), |s, x| x.try_log_sigmoid());
activation!(/// σ(x).
    Sigmoid, "Sigmoid()".into(), |s, x| x.try_sigmoid());
activation!(/// tanh(x).
    Tanh, "Tanh()".into(), |s, x| x.try_tanh());
activation!(/// softmax along an axis.
    Softmax { axis: isize }, format!("Softmax(dim={})", s.axis), |s, x| x.try_softmax(s.axis));
activation!(/// log_softmax along an axis.
    LogSoftmax { axis: isize }, format!("LogSoftmax(dim={})", s.axis), |s, x| x.try_log_softmax(s.axis));
activation!(/// The identity.
    Identity, "Identity()".into(), |s, x| Ok(x.clone()));
