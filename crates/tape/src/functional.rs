//! Higher-order functional transforms, like `torch.autograd.functional`:
//! [`vjp`], [`jvp`], [`jacobian`], [`hessian`] and [`hvp`] over functions of
//! one or several tensors. Each builds a fresh graph, so nothing leaks into
//! the caller's graphs.
//!
//! [`hessian_eigen`] reads the curvature of f at a point: the eigenvalues
//! and eigenvectors of its Hessian (by [`eigh`], `torch.linalg.eigh`), with
//! [`SymmetricEigen::is_positive_definite`] and
//! [`SymmetricEigen::condition_number`].

use crate::backward::{try_grad, GradOptions};
use crate::element::Element;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::Graph;
use crate::shape::fmt_shape;
use crate::tensor::Tensor;
use crate::var::Var;

fn leaves<T: Element>(graph: &Graph<T>, inputs: &[Tensor<T>]) -> Vec<Var<T>> {
    inputs.iter().map(|t| graph.leaf(t.clone())).collect()
}

fn check_like<T: Element>(
    op: &'static str,
    what: &str,
    given: &[Tensor<T>],
    like: &[&[usize]],
) -> Result<()> {
    if given.len() != like.len() {
        return Err(Error::argument(
            op,
            format!("{} {what} given for {} inputs", given.len(), like.len()),
        ));
    }
    for (i, (g, l)) in given.iter().zip(like).enumerate() {
        if g.shape() != *l {
            return Err(Error::shape(
                op,
                format!(
                    "{what} {i} has shape {} but input {i} has shape {}",
                    fmt_shape(g.shape()),
                    fmt_shape(l)
                ),
            ));
        }
    }
    Ok(())
}

/// Gradients of `outputs` wrt `wrt` that tolerate outputs which do not
/// depend on anything (their contribution is zero).
fn grads_of<T: Element>(
    outputs: &[Var<T>],
    upstream: &[Var<T>],
    wrt: &[&Var<T>],
    create_graph: bool,
) -> Result<Vec<Var<T>>> {
    let live: Vec<usize> = (0..outputs.len())
        .filter(|&i| outputs[i].requires_grad())
        .collect();
    if live.is_empty() {
        return Ok(wrt
            .iter()
            .map(|v| Var::constant(v.value().zeros_like()))
            .collect());
    }
    let outs: Vec<&Var<T>> = live.iter().map(|&i| &outputs[i]).collect();
    let ups: Vec<Option<&Var<T>>> = live.iter().map(|&i| Some(&upstream[i])).collect();
    try_grad(
        &outs,
        &ups,
        wrt,
        GradOptions {
            create_graph,
            retain_graph: true,
        },
    )
}

/// Vector-Jacobian product: `(f(x), vᵀ·∂f/∂x)` for a cotangent `v` shaped like f(x).
pub fn vjp<T: Element>(
    f: impl Fn(&[Var<T>]) -> Var<T>,
    inputs: &[Tensor<T>],
    v: &Tensor<T>,
) -> Result<(Tensor<T>, Vec<Tensor<T>>)> {
    let graph = Graph::new();
    let xs = leaves(&graph, inputs);
    let out = f(&xs);
    if out.shape() != v.shape() {
        return Err(Error::shape(
            "vjp",
            format!(
                "cotangent {} does not match output {}",
                fmt_shape(v.shape()),
                fmt_shape(out.shape())
            ),
        ));
    }
    let wrt: Vec<&Var<T>> = xs.iter().collect();
    let g = grads_of(
        std::slice::from_ref(&out),
        &[Var::constant(v.clone())],
        &wrt,
        false,
    )?;
    Ok((
        out.into_value(),
        g.into_iter().map(Var::into_value).collect(),
    ))
}

/// Jacobian-vector product: `(f(x), ∂f/∂x·v)` for tangents `v` shaped like
/// the inputs, by the double-vjp trick: g(u) = uᵀJ is linear in u, so
/// ∂(g(u)·v)/∂u = J·v. Every backward formula is differentiable, so this
/// works for every op.
pub fn jvp<T: Element>(
    f: impl Fn(&[Var<T>]) -> Var<T>,
    inputs: &[Tensor<T>],
    v: &[Tensor<T>],
) -> Result<(Tensor<T>, Tensor<T>)> {
    check_like(
        "jvp",
        "tangent",
        v,
        &inputs.iter().map(|t| t.shape()).collect::<Vec<_>>(),
    )?;
    let graph = Graph::new();
    let xs = leaves(&graph, inputs);
    let out = f(&xs);
    let u = graph.leaf(out.value().zeros_like());
    let wrt: Vec<&Var<T>> = xs.iter().collect();
    let g = grads_of(
        std::slice::from_ref(&out),
        std::slice::from_ref(&u),
        &wrt,
        true,
    )?;
    let tangents: Vec<Var<T>> = v.iter().cloned().map(Var::constant).collect();
    let jv = grads_of(&g, &tangents, &[&u], false)?;
    Ok((
        out.into_value(),
        jv.into_iter().next().expect("one input").into_value(),
    ))
}

/// Rows of the Jacobian of each output element, one vector-Jacobian product
/// per element on one retained graph: `J[i]` has shape `out ++ input_i`.
fn jacobian_rows<T: Element>(
    outs: &Var<T>,
    wrt: &[&Var<T>],
    create_graph: bool,
) -> Result<Vec<Vec<Tensor<T>>>> {
    let mut rows: Vec<Vec<Tensor<T>>> = vec![Vec::with_capacity(outs.numel()); wrt.len()];
    for e in 0..outs.numel() {
        let mut seed = Tensor::zeros(outs.shape());
        seed.data_mut()[e] = T::one();
        let g = grads_of(
            std::slice::from_ref(outs),
            &[Var::constant(seed)],
            wrt,
            create_graph,
        )?;
        for (row, gi) in rows.iter_mut().zip(g) {
            row.push(gi.into_value());
        }
    }
    Ok(rows)
}

fn stack<T: Element>(rows: Vec<Tensor<T>>, lead: &[usize], tail: &[usize]) -> Result<Tensor<T>> {
    let data: Vec<T> = rows.iter().flat_map(|r| r.data().iter().copied()).collect();
    Tensor::try_from_vec([lead, tail].concat(), data)
}

/// The Jacobian of `f` at `inputs`: one tensor per input, of shape
/// `f(x).shape ++ input.shape` (as `torch.autograd.functional.jacobian`).
pub fn jacobian<T: Element>(
    f: impl Fn(&[Var<T>]) -> Var<T>,
    inputs: &[Tensor<T>],
) -> Result<Vec<Tensor<T>>> {
    let graph = Graph::new();
    let xs = leaves(&graph, inputs);
    let out = f(&xs);
    let wrt: Vec<&Var<T>> = xs.iter().collect();
    let rows = jacobian_rows(&out, &wrt, false)?;
    rows.into_iter()
        .zip(inputs)
        .map(|(r, x)| stack(r, out.shape(), x.shape()))
        .collect()
}

/// The first half of [`hessian`] and [`hvp`]: f on fresh leaves, and ∇f
/// recorded with `create_graph` so it can be differentiated again.
struct Gradient<T: Element> {
    _graph: Graph<T>,
    leaves: Vec<Var<T>>,
    value: Var<T>,
    grads: Vec<Var<T>>,
}

fn recorded_gradient<T: Element>(
    op: &'static str,
    f: impl Fn(&[Var<T>]) -> Var<T>,
    inputs: &[Tensor<T>],
) -> Result<Gradient<T>> {
    let graph = Graph::new();
    let leaves = leaves(&graph, inputs);
    let value = f(&leaves);
    if value.numel() != 1 {
        return Err(Error::new(
            op,
            ErrorKind::NotScalar,
            format!(
                "f must return one element, not {}",
                fmt_shape(value.shape())
            ),
        ));
    }
    let wrt: Vec<&Var<T>> = leaves.iter().collect();
    let grads = grads_of(
        std::slice::from_ref(&value),
        &[Var::constant(Tensor::ones(value.shape()))],
        &wrt,
        true,
    )?;
    Ok(Gradient {
        _graph: graph,
        leaves,
        value,
        grads,
    })
}

/// The Hessian of a scalar `f`: blocks `H[i][j] = ∂²f/∂x_i∂x_j` of shape
/// `x_i.shape ++ x_j.shape` (as `torch.autograd.functional.hessian`). This
/// is dense — one backward pass per input element; for large inputs use [`hvp`].
pub fn hessian<T: Element>(
    f: impl Fn(&[Var<T>]) -> Var<T>,
    inputs: &[Tensor<T>],
) -> Result<Vec<Vec<Tensor<T>>>> {
    let g = recorded_gradient("hessian", f, inputs)?;
    let wrt: Vec<&Var<T>> = g.leaves.iter().collect();
    let mut blocks = Vec::with_capacity(inputs.len());
    for (gi, xi) in g.grads.iter().zip(inputs) {
        let rows = jacobian_rows(gi, &wrt, false)?;
        blocks.push(
            rows.into_iter()
                .zip(inputs)
                .map(|(r, xj)| stack(r, xi.shape(), xj.shape()))
                .collect::<Result<Vec<_>>>()?,
        );
    }
    Ok(blocks)
}

/// Hessian-vector product `(f(x), H·v)` of a scalar `f`, as one double
/// backward: ∂(∇f·v)/∂x. Costs a few passes of f's graph whatever the number
/// of parameters; the Hessian itself is never formed.
pub fn hvp<T: Element>(
    f: impl Fn(&[Var<T>]) -> Var<T>,
    inputs: &[Tensor<T>],
    v: &[Tensor<T>],
) -> Result<(Tensor<T>, Vec<Tensor<T>>)> {
    check_like(
        "hvp",
        "vector",
        v,
        &inputs.iter().map(|t| t.shape()).collect::<Vec<_>>(),
    )?;
    let g = recorded_gradient("hvp", f, inputs)?;
    let wrt: Vec<&Var<T>> = g.leaves.iter().collect();
    let vs: Vec<Var<T>> = v.iter().cloned().map(Var::constant).collect();
    let hv = grads_of(&g.grads, &vs, &wrt, false)?;
    Ok((
        g.value.into_value(),
        hv.into_iter().map(Var::into_value).collect(),
    ))
}

/// The eigen-decomposition A = Q·diag(λ)·Qᵀ of a symmetric matrix, as
/// `torch.linalg.eigh` returns it.
#[derive(Clone, Debug)]
pub struct SymmetricEigen<T: Element> {
    /// The eigenvalues λ₁ ≤ … ≤ λₙ, ascending, shape `[n]`.
    pub eigenvalues: Tensor<T>,
    /// Q, shape `[n, n]`: column k is a unit eigenvector of `eigenvalues[k]`
    /// (A·q = λ·q). Each column's sign is arbitrary, as in PyTorch.
    pub eigenvectors: Tensor<T>,
}

impl<T: Element> SymmetricEigen<T> {
    /// The magnitude below which an eigenvalue counts as zero:
    /// n·ε·max|λ| (ε the element type's machine epsilon), the tolerance
    /// `torch.linalg.matrix_rank` uses by default. Rounding in the matrix
    /// and the solver moves eigenvalues by about that much.
    pub fn zero_tolerance(&self) -> f64 {
        let n = self.eigenvalues.numel() as f64;
        n * T::epsilon().as_f64() * self.max_abs()
    }

    /// Whether every eigenvalue is above [`SymmetricEigen::zero_tolerance`]:
    /// xᵀAx > 0 for every x ≠ 0. For a Hessian at a stationary point (∇f = 0)
    /// this is the second-order test for a strict local minimum.
    pub fn is_positive_definite(&self) -> bool {
        let tol = self.zero_tolerance();
        self.eigenvalues.data().iter().all(|v| v.as_f64() > tol)
    }

    /// Whether every eigenvalue is below −[`SymmetricEigen::zero_tolerance`]
    /// (a strict local maximum, for a Hessian at a stationary point).
    pub fn is_negative_definite(&self) -> bool {
        let tol = self.zero_tolerance();
        self.eigenvalues.data().iter().all(|v| v.as_f64() < -tol)
    }

    /// The 2-norm condition number κ = max|λ| / min|λ| (`torch.linalg.cond`
    /// of a symmetric matrix): ∞ for a singular matrix, NaN for an empty one.
    /// Gradient descent on a quadratic with this Hessian converges at a rate
    /// set by κ.
    pub fn condition_number(&self) -> f64 {
        let data = self.eigenvalues.data();
        if data.is_empty() {
            return f64::NAN;
        }
        let min = data
            .iter()
            .fold(f64::INFINITY, |m, v| m.min(v.as_f64().abs()));
        self.max_abs() / min
    }

    fn max_abs(&self) -> f64 {
        let data = self.eigenvalues.data();
        data.iter().fold(0.0, |m, v| m.max(v.as_f64().abs()))
    }
}

/// The eigenvalues (ascending) and eigenvectors of a symmetric `[n, n]`
/// matrix, like `torch.linalg.eigh(A)`: only the lower triangle is read
/// (PyTorch's default `UPLO='L'`). Computed in f64 (nalgebra's symmetric QR
/// iteration) on the matrix divided by its largest entry, then scaled back,
/// so the iteration sees entries of at most 1 whatever their magnitude.
/// Errors if the matrix is not square, has a non-finite entry, or the
/// iteration does not converge.
pub fn eigh<T: Element>(matrix: &Tensor<T>) -> Result<SymmetricEigen<T>> {
    let n = match matrix.shape() {
        [r, c] if r == c => *r,
        s => {
            return Err(Error::shape(
                "eigh",
                format!("expected a square matrix [n, n], got {}", fmt_shape(s)),
            ))
        }
    };
    let data = matrix.data();
    if let Some(k) = (0..n * n).find(|&k| k / n >= k % n && !data[k].is_finite()) {
        return Err(Error::argument(
            "eigh",
            format!("entry ({}, {}) is {}", k / n, k % n, data[k]),
        ));
    }
    if n == 0 {
        return Ok(SymmetricEigen {
            eigenvalues: Tensor::zeros([0]),
            eigenvectors: matrix.clone(),
        });
    }
    let a = nalgebra::DMatrix::from_fn(n, n, |i, j| data[i * n + j].as_f64());
    let scale = a.lower_triangle().amax().max(f64::MIN_POSITIVE);
    let eigen = nalgebra::SymmetricEigen::try_new(a / scale, f64::EPSILON, 10_000)
        .ok_or_else(|| Error::argument("eigh", "the eigenvalue iteration did not converge"))?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| eigen.eigenvalues[i].total_cmp(&eigen.eigenvalues[j]));
    let values = order
        .iter()
        .map(|&k| T::from_f64(eigen.eigenvalues[k] * scale))
        .collect();
    let vectors = (0..n * n)
        .map(|k| T::from_f64(eigen.eigenvectors[(k / n, order[k % n])]))
        .collect();
    Ok(SymmetricEigen {
        eigenvalues: Tensor::try_from_vec([n], values)?,
        eigenvectors: Tensor::try_from_vec([n, n], vectors)?,
    })
}

/// The Hessian of a scalar `f` at `inputs` as one `[n, n]` matrix over all
/// n input elements (input 0's elements first, each in row-major order),
/// and its eigen-decomposition by [`eigh`].
///
/// ```
/// use chainrule_tape::functional::hessian_eigen;
/// use chainrule_tape::Tensor;
/// // f(x, y) = x² + xy + y²: H = [[2, 1], [1, 2]], eigenvalues 1 and 3.
/// let f = |v: &[chainrule_tape::Var<f64>]| {
///     let (x, y) = (&v[0], &v[1]);
///     &(&(x * x) + &(x * y)) + &(y * y)
/// };
/// let e = hessian_eigen(f, &[Tensor::scalar(0.5), Tensor::scalar(-2.0)]).unwrap();
/// let l = e.eigenvalues.data();
/// assert!((l[0] - 1.0).abs() < 1e-12 && (l[1] - 3.0).abs() < 1e-12); // rounding only
/// assert!(e.is_positive_definite());
/// assert!((e.condition_number() - 3.0).abs() < 1e-12);
/// ```
pub fn hessian_eigen<T: Element>(
    f: impl Fn(&[Var<T>]) -> Var<T>,
    inputs: &[Tensor<T>],
) -> Result<SymmetricEigen<T>> {
    let blocks = hessian(f, inputs)?;
    let sizes: Vec<usize> = inputs.iter().map(|x| x.numel()).collect();
    let n: usize = sizes.iter().sum();
    let mut h = Tensor::try_full([n, n], T::zero())?;
    let data = h.data_mut();
    let mut row0 = 0;
    for (i, row_blocks) in blocks.iter().enumerate() {
        let mut col0 = 0;
        for (j, block) in row_blocks.iter().enumerate() {
            for (k, &v) in block.data().iter().enumerate() {
                data[(row0 + k / sizes[j]) * n + col0 + k % sizes[j]] = v;
            }
            col0 += sizes[j];
        }
        row0 += sizes[i];
    }
    eigh(&h)
}
