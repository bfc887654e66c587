//! The ops of the recorded pass and their backwards, once: RMSNorm, linear maps, rotary
//! embedding, and the packing of per-target prefixes. Each uses egi-model's fused f32 kernel
//! where it applies (fastops) and candle ops otherwise.

use anyhow::Result;
use candle_core::{Tensor, D};

use crate::fastops;

/// RMS factor 1/sqrt(mean(x^2) + eps) over the last dimension (kept for the backward).
fn rms_factor(x: &Tensor, eps: f64) -> Result<Tensor> {
    Ok((x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?)
}

/// y = x r w and r.
pub(crate) fn rms_norm_fwd(x: &Tensor, w: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    if let Some(yr) = fastops::rms_norm(x, w, eps)? {
        return Ok(yr);
    }
    let r = rms_factor(x, eps)?;
    Ok((x.broadcast_mul(&r)?.broadcast_mul(w)?, r))
}

/// Backward of y = x r w: dx = r g - x r^3 mean(x g) with g = dy w, and the weight's
/// gradient sum over rows of dy x r when `want_w`. `dy` may stack cotangents of the same x.
pub(crate) fn rms_bwd(
    x: &Tensor,
    r: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    want_w: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    if let Some(out) = fastops::rms_norm_bwd(x, r, w, &dy.contiguous()?, want_w)? {
        return Ok(out);
    }
    let g = dy.broadcast_mul(w)?;
    let xg = g.broadcast_mul(x)?.mean_keepdim(D::Minus1)?;
    let r3 = r.powf(3.0)?;
    let dx = (g.broadcast_mul(r)? - xg.broadcast_mul(&r3)?.broadcast_mul(x)?)?;
    let dw = if want_w {
        let n = x.dim(D::Minus1)?;
        Some((dy * x.broadcast_mul(r)?)?.reshape(((), n))?.sum(0)?)
    } else {
        None
    };
    Ok((dx, dw))
}

/// x [.., in] W[out, in]^T (+ b).
pub(crate) fn lin(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let y = if dims.len() == 2 {
        x.matmul(&w.t()?)?
    } else {
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let mut out = dims.clone();
        *out.last_mut().unwrap() = w.dim(0)?;
        x.reshape((rows, dims[dims.len() - 1]))?
            .matmul(&w.t()?)?
            .reshape(out)?
    };
    Ok(match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

/// dy [.., out] W[out, in]: the input gradient of [`lin`].
pub(crate) fn lin_bwd(dy: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = dy.dims().to_vec();
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let mut out = dims.clone();
    *out.last_mut().unwrap() = w.dim(1)?;
    Ok(dy
        .reshape((rows, dims[dims.len() - 1]))?
        .contiguous()?
        .matmul(w)?
        .reshape(out)?)
}

fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    Ok(Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?)
}

/// y = x cos + rot(x) sin over [n, T, hd]; the transpose is dx = dy cos - rot(dy sin).
fn rope_fwd(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    Ok((x.broadcast_mul(cos)? + rotate_half(x)?.broadcast_mul(sin)?)?)
}
fn rope_bwd(dy: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    Ok((dy.broadcast_mul(cos)? - rotate_half(&dy.broadcast_mul(sin)?)?)?)
}

/// Rotary embedding of x [T, n, hd] (cos, sin [T, hd]), written head-major [n, T, hd]: by
/// the fused kernel where it applies, else by the formula (bit-identical either way).
pub fn rope_heads(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if let Some(y) = fastops::rope_heads(x, cos, sin)? {
        return Ok(y);
    }
    rope_fwd(&x.transpose(0, 1)?.contiguous()?, cos, sin)
}

/// Backward of [`rope_heads`]: dy [n, T, hd] -> dx [T, n, hd].
pub fn rope_heads_bwd(dy: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if let Some(y) = fastops::rope_heads_bwd(dy, cos, sin)? {
        return Ok(y);
    }
    Ok(rope_bwd(dy, cos, sin)?.transpose(0, 1)?)
}

/// The first lens[k] rows of `x` for every target k, one block after another.
pub(crate) fn packed_rows(x: &Tensor, lens: &[usize]) -> Result<Tensor> {
    let parts = lens
        .iter()
        .map(|&n| x.narrow(0, 0, n))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}
