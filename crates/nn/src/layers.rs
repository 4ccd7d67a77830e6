//! Parameterised layers: Linear, Conv1d, Conv2d, ConvTranspose2d and
//! Embedding, plus the shape layers Flatten and the pools. Default
//! initialisation equals PyTorch's: weight and bias U(±1/√fan_in) (the
//! weight by kaiming_uniform with a = √5, which reduces to that bound).

use crate::init::{self, FanMode, Nonlinearity};
use crate::module::{join, Module};
use chainrule_ops::{
    self as ops, Conv1dOptions, Conv2dOptions, ConvTranspose2dOptions, Indices, Pool2dOptions,
    Size2, Transpose, VarOps,
};
use chainrule_tape::error::{or_panic, Error, Result};
use chainrule_tape::shape::fmt_shape;
use chainrule_tape::{Element, Graph, Parameter, Tensor, Var};
use rand::Rng;

/// PyTorch's default: weight kaiming_uniform(a = √5) = U(±1/√fan_in), bias U(±1/√fan_in).
fn default_init<T: Element>(
    weight: &Parameter<T>,
    bias: Option<&Parameter<T>>,
    fan_in: usize,
    rng: &mut impl Rng,
) {
    init::kaiming_uniform(
        weight,
        FanMode::FanIn,
        Nonlinearity::LeakyRelu(5f64.sqrt()),
        rng,
    )
    .expect("layer weights have at least 2 dimensions");
    if let Some(b) = bias {
        // As PyTorch: a layer without inputs gets a zero bias.
        let bound = if fan_in > 0 {
            1.0 / (fan_in as f64).sqrt()
        } else {
            0.0
        };
        init::uniform(b, -bound, bound, rng);
    }
}

fn visit_weight_bias<T: Element>(
    prefix: &str,
    w: &Parameter<T>,
    b: &Option<Parameter<T>>,
    f: &mut dyn FnMut(String, &Parameter<T>),
) {
    f(join(prefix, "weight"), w);
    if let Some(b) = b {
        f(join(prefix, "bias"), b);
    }
}

/// y = x·Wᵀ + b, W of shape [out, in] (`torch.nn.Linear`).
pub struct Linear<T: Element = f32> {
    /// [out_features, in_features].
    pub weight: Parameter<T>,
    /// `[out_features]`, if the layer has a bias.
    pub bias: Option<Parameter<T>>,
}

impl<T: Element> Linear<T> {
    /// A layer with bias, PyTorch's default initialisation.
    pub fn new(in_features: usize, out_features: usize, rng: &mut impl Rng) -> Self {
        Self::with_bias(in_features, out_features, true, rng)
    }

    /// A layer with or without bias.
    pub fn with_bias(
        in_features: usize,
        out_features: usize,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Self {
        let weight = Parameter::new(Tensor::zeros([out_features, in_features]));
        let bias = bias.then(|| Parameter::new(Tensor::zeros([out_features])));
        default_init(&weight, bias.as_ref(), in_features, rng);
        Linear { weight, bias }
    }
}

impl<T: Element> Module<T> for Linear<T> {
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        let w = g.param(&self.weight);
        let y = x.try_matmul_t(&w, Transpose::Second)?;
        match &self.bias {
            Some(b) => y.try_add(&g.param(b)),
            None => Ok(y),
        }
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>)) {
        visit_weight_bias(prefix, &self.weight, &self.bias, f)
    }
    fn describe(&self) -> String {
        let s = self.weight.shape();
        format!(
            "Linear({}, {}{})",
            s[1],
            s[0],
            if self.bias.is_none() {
                ", bias=False"
            } else {
                ""
            }
        )
    }
}

/// 2-D convolution over [N, C, H, W] (`torch.nn.Conv2d`).
pub struct Conv2d<T: Element = f32> {
    /// [out, in/groups, kh, kw].
    pub weight: Parameter<T>,
    /// `[out]`, if any.
    pub bias: Option<Parameter<T>>,
    /// Stride (h, w).
    pub stride: (usize, usize),
    /// Zero padding (h, w).
    pub padding: (usize, usize),
    /// Dilation (h, w).
    pub dilation: (usize, usize),
    /// Channel groups.
    pub groups: usize,
}

/// Settings of a convolution layer besides its channel counts and kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvOptions {
    /// Stride (1).
    pub stride: usize,
    /// Zero padding (0).
    pub padding: usize,
    /// Dilation (1).
    pub dilation: usize,
    /// Channel groups (1).
    pub groups: usize,
    /// Learn a bias (true).
    pub bias: bool,
    /// Extra output size of a transposed convolution (0).
    pub output_padding: usize,
}

impl Default for ConvOptions {
    fn default() -> Self {
        ConvOptions {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
            bias: true,
            output_padding: 0,
        }
    }
}

/// Rejects a convolution whose channels do not divide into its groups, or
/// whose kernel, stride, dilation or groups is 0, with an argument error
/// naming the layer and the value.
fn check_conv(
    layer: &'static str,
    (in_channels, out_channels): (usize, usize),
    kernel: usize,
    o: &ConvOptions,
) -> Result<()> {
    let sizes = [
        ("kernel_size", kernel),
        ("stride", o.stride),
        ("dilation", o.dilation),
        ("groups", o.groups),
    ];
    if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
        return Err(Error::argument(
            layer,
            format!("{name} must be at least 1, got 0"),
        ));
    }
    if !in_channels.is_multiple_of(o.groups) || !out_channels.is_multiple_of(o.groups) {
        return Err(Error::argument(
            layer,
            format!(
                "channels ({in_channels} in, {out_channels} out) must divide into {} groups",
                o.groups
            ),
        ));
    }
    Ok(())
}

/// Builds the weight of `shape` and the bias (one per output channel) with
/// PyTorch's default initialisation; fan_in = weight dimension 1 × kernel
/// size, as PyTorch computes it (for a transposed convolution that is
/// out/groups). The settings were checked by [`check_conv`].
fn conv_params<T: Element>(
    out_channels: usize,
    shape: &[usize],
    o: &ConvOptions,
    rng: &mut impl Rng,
) -> Result<(Parameter<T>, Option<Parameter<T>>)> {
    let weight = Parameter::new(Tensor::try_full(shape, T::zero())?);
    let bias = o
        .bias
        .then(|| Parameter::new(Tensor::zeros([out_channels])));
    let fan_in = shape[1..].iter().product();
    default_init(&weight, bias.as_ref(), fan_in, rng);
    Ok((weight, bias))
}

impl<T: Element> Conv2d<T> {
    /// A k×k convolution with PyTorch's default initialisation.
    ///
    /// # Panics
    ///
    /// On the settings [`Conv2d::try_new`] rejects.
    #[track_caller]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: ConvOptions,
        rng: &mut impl Rng,
    ) -> Self {
        or_panic(Self::try_new(
            in_channels,
            out_channels,
            kernel,
            options,
            rng,
        ))
    }

    /// A k×k convolution, or an argument error if the channels do not
    /// divide into `options.groups` or the kernel, stride, dilation or
    /// groups is 0.
    pub fn try_new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: ConvOptions,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        check_conv("Conv2d", (in_channels, out_channels), kernel, &options)?;
        let shape = [out_channels, in_channels / options.groups, kernel, kernel];
        let (weight, bias) = conv_params(out_channels, &shape, &options, rng)?;
        let (s, p, d) = (options.stride, options.padding, options.dilation);
        Ok(Conv2d {
            weight,
            bias,
            stride: (s, s),
            padding: (p, p),
            dilation: (d, d),
            groups: options.groups,
        })
    }
}

impl<T: Element> Module<T> for Conv2d<T> {
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        let b = self.bias.as_ref().map(|b| g.param(b));
        let options = Conv2dOptions {
            stride: self.stride.into(),
            padding: self.padding.into(),
            dilation: self.dilation.into(),
            groups: self.groups,
        };
        ops::try_conv2d(x, &g.param(&self.weight), b.as_ref(), options)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>)) {
        visit_weight_bias(prefix, &self.weight, &self.bias, f)
    }
    fn describe(&self) -> String {
        let s = self.weight.shape();
        format!(
            "Conv2d({}, {}, kernel_size=({}, {}), stride={:?}, padding={:?})",
            s[1] * self.groups,
            s[0],
            s[2],
            s[3],
            self.stride,
            self.padding
        )
    }
}

/// 1-D convolution over [N, C, L] (`torch.nn.Conv1d`).
pub struct Conv1d<T: Element = f32> {
    /// [out, in/groups, k].
    pub weight: Parameter<T>,
    /// `[out]`, if any.
    pub bias: Option<Parameter<T>>,
    /// The settings.
    pub options: ConvOptions,
}

impl<T: Element> Conv1d<T> {
    /// A width-k convolution with PyTorch's default initialisation.
    ///
    /// # Panics
    ///
    /// On the settings [`Conv1d::try_new`] rejects.
    #[track_caller]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: ConvOptions,
        rng: &mut impl Rng,
    ) -> Self {
        or_panic(Self::try_new(
            in_channels,
            out_channels,
            kernel,
            options,
            rng,
        ))
    }

    /// A width-k convolution, or an argument error on the settings
    /// [`Conv2d::try_new`] rejects.
    pub fn try_new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: ConvOptions,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        check_conv("Conv1d", (in_channels, out_channels), kernel, &options)?;
        let shape = [out_channels, in_channels / options.groups, kernel];
        let (weight, bias) = conv_params(out_channels, &shape, &options, rng)?;
        Ok(Conv1d {
            weight,
            bias,
            options,
        })
    }
}

impl<T: Element> Module<T> for Conv1d<T> {
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        let b = self.bias.as_ref().map(|b| g.param(b));
        let o = &self.options;
        let options = Conv1dOptions {
            stride: o.stride,
            padding: o.padding,
            dilation: o.dilation,
            groups: o.groups,
        };
        ops::try_conv1d(x, &g.param(&self.weight), b.as_ref(), options)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>)) {
        visit_weight_bias(prefix, &self.weight, &self.bias, f)
    }
    fn describe(&self) -> String {
        let s = self.weight.shape();
        format!(
            "Conv1d({}, {}, kernel_size=({},), stride=({},))",
            s[1] * self.options.groups,
            s[0],
            s[2],
            self.options.stride
        )
    }
}

/// Transposed 2-D convolution (`torch.nn.ConvTranspose2d`); weight
/// [in, out/groups, k, k]. PyTorch computes its default bounds from
/// weight dimension 1 (out/groups·k²), and so does this.
pub struct ConvTranspose2d<T: Element = f32> {
    /// [in, out/groups, k, k].
    pub weight: Parameter<T>,
    /// `[out]`, if any.
    pub bias: Option<Parameter<T>>,
    /// The settings.
    pub options: ConvOptions,
}

impl<T: Element> ConvTranspose2d<T> {
    /// A k×k transposed convolution with PyTorch's default initialisation.
    ///
    /// # Panics
    ///
    /// On the settings [`ConvTranspose2d::try_new`] rejects.
    #[track_caller]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: ConvOptions,
        rng: &mut impl Rng,
    ) -> Self {
        or_panic(Self::try_new(
            in_channels,
            out_channels,
            kernel,
            options,
            rng,
        ))
    }

    /// A k×k transposed convolution, or an argument error on the settings
    /// [`Conv2d::try_new`] rejects.
    pub fn try_new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: ConvOptions,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        check_conv(
            "ConvTranspose2d",
            (in_channels, out_channels),
            kernel,
            &options,
        )?;
        let shape = [in_channels, out_channels / options.groups, kernel, kernel];
        let (weight, bias) = conv_params(out_channels, &shape, &options, rng)?;
        Ok(ConvTranspose2d {
            weight,
            bias,
            options,
        })
    }
}

impl<T: Element> Module<T> for ConvTranspose2d<T> {
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        let b = self.bias.as_ref().map(|b| g.param(b));
        let o = &self.options;
        let options = ConvTranspose2dOptions::default()
            .stride(o.stride)
            .padding(o.padding)
            .output_padding(o.output_padding)
            .dilation(o.dilation)
            .groups(o.groups);
        ops::try_conv_transpose2d(x, &g.param(&self.weight), b.as_ref(), options)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>)) {
        visit_weight_bias(prefix, &self.weight, &self.bias, f)
    }
    fn describe(&self) -> String {
        let s = self.weight.shape();
        let st = self.options.stride;
        format!(
            "ConvTranspose2d({}, {}, kernel_size=({}, {}), stride=({st}, {st}))",
            s[0],
            s[1] * self.options.groups,
            s[2],
            s[3]
        )
    }
}

/// Max pooling (`torch.nn.MaxPool2d`): the options of
/// [`ops::max_pool2d`], whose stride defaults to the kernel as PyTorch's.
pub struct MaxPool2d(pub Pool2dOptions);

impl MaxPool2d {
    /// `kernel` windows with stride `kernel` (`nn.MaxPool2d(k)`); set the
    /// rest with `MaxPool2d(Pool2dOptions::new(3).stride(1).padding(1))`.
    pub fn new(kernel: impl Into<Size2>) -> Self {
        MaxPool2d(Pool2dOptions::new(kernel))
    }
}

impl<T: Element> Module<T> for MaxPool2d {
    fn try_forward(&self, _g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        ops::try_max_pool2d(x, self.0)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Parameter<T>)) {}
    fn describe(&self) -> String {
        let w = self.0.window();
        format!(
            "MaxPool2d(kernel_size={:?}, stride={:?}, padding={:?})",
            w.kernel, w.stride, w.padding
        )
    }
}

/// Average pooling (`torch.nn.AvgPool2d`): the options of
/// [`ops::avg_pool2d`] (stride = kernel, padding zeros counted by default).
pub struct AvgPool2d(pub Pool2dOptions);

impl AvgPool2d {
    /// `kernel` windows with stride `kernel` (`nn.AvgPool2d(k)`).
    pub fn new(kernel: impl Into<Size2>) -> Self {
        AvgPool2d(Pool2dOptions::new(kernel))
    }
}

impl<T: Element> Module<T> for AvgPool2d {
    fn try_forward(&self, _g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        ops::try_avg_pool2d(x, self.0)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Parameter<T>)) {}
    fn describe(&self) -> String {
        let w = self.0.window();
        format!(
            "AvgPool2d(kernel_size={:?}, stride={:?})",
            w.kernel, w.stride
        )
    }
}

/// Adaptive average pooling to a fixed output size (`torch.nn.AdaptiveAvgPool2d`).
pub struct AdaptiveAvgPool2d(pub (usize, usize));

impl<T: Element> Module<T> for AdaptiveAvgPool2d {
    fn try_forward(&self, _g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        ops::try_adaptive_avg_pool2d(x, self.0)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Parameter<T>)) {}
    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d(output_size={:?})", self.0)
    }
}

/// Flattens all dimensions after the first (`torch.nn.Flatten`).
pub struct Flatten;

impl<T: Element> Module<T> for Flatten {
    fn try_forward(&self, _g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        if x.shape().len() < 2 {
            return Ok(x.clone());
        }
        x.try_flatten(1, -1)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Parameter<T>)) {}
    fn describe(&self) -> String {
        "Flatten(start_dim=1, end_dim=-1)".into()
    }
}

/// A lookup table of `num` vectors of size `dim` (`torch.nn.Embedding`),
/// initialised N(0, 1) as PyTorch.
pub struct Embedding<T: Element = f32> {
    /// [num, dim].
    pub weight: Parameter<T>,
}

impl<T: Element> Embedding<T> {
    /// A table with N(0, 1) entries.
    pub fn new(num: usize, dim: usize, rng: &mut impl Rng) -> Self {
        let weight = Parameter::new(Tensor::zeros([num, dim]));
        init::normal(&weight, 0.0, 1.0, rng);
        Embedding { weight }
    }

    /// Rows `indices` of the table: shape `indices.shape + [dim]`.
    pub fn lookup(&self, g: &Graph<T>, indices: &Indices) -> Result<Var<T>> {
        let w = g.param(&self.weight);
        let rows = w.try_index_select(0, &Indices::vector(indices.data.clone()))?;
        let mut shape = indices.shape.clone();
        shape.push(self.weight.shape()[1]);
        rows.try_reshape_to(&shape)
    }
}

impl<T: Element> Module<T> for Embedding<T> {
    /// The input holds indices as whole numbers (as floats).
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        let num = self.weight.shape()[0];
        let mut data = Vec::with_capacity(x.numel());
        for &v in x.value().data() {
            let f = v.as_f64();
            if f.fract() != 0.0 || f < 0.0 || f >= num as f64 {
                return Err(Error::argument(
                    "Embedding",
                    format!(
                        "index {f} in input {} is not a row of a {num}-row table",
                        fmt_shape(x.shape())
                    ),
                ));
            }
            data.push(f as usize);
        }
        self.lookup(g, &Indices::new(x.shape().to_vec(), data)?)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>)) {
        f(join(prefix, "weight"), &self.weight)
    }
    fn describe(&self) -> String {
        let s = self.weight.shape();
        format!("Embedding({}, {})", s[0], s[1])
    }
}
