//! Higher-order functional transforms, like `torch.autograd.functional`:
//! [`vjp`], [`jvp`], [`jacobian`], [`hessian`] and [`hvp`] over functions of
//! one or several tensors. Each builds a fresh graph, so nothing leaks into
//! the caller's graphs.

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
