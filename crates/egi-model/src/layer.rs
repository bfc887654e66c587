//! One decoder layer, written once ([`layer`]): a pre-norm attention block (q/k/v
//! projections with optional biases, Qwen3's optional per-head q/k norm, rotary embedding,
//! grouped-query softmax attention, output projection) and a pre-norm gated SiLU MLP, each
//! added to the residual stream.
//!
//! How each op runs is a [`LayerOps`] implementation's:
//! - model.rs, `Infer`: batched rows [B, T, ..], a KV cache and the decode kernels
//!   (inference), or candle ops only (the differentiable path autograd reads);
//! - pass/record.rs, `Recorder`: one row [T, ..], keeping the activations the hand-written
//!   backwards (pass/weights.rs, pass/targets.rs) read.
//!
//! An architecture whose layer differs (another norm placement, activation, bias) changes
//! [`layer`] once, then each implementation's ops and the pass's backwards.

use anyhow::Result;
use candle_core::Tensor;

use crate::model::Layer;

/// Which RMSNorm of the layer an op is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NormAt {
    /// Before attention, on the residual stream entering the layer.
    Input,
    /// Qwen3: per head, on q and on k before the rotary embedding.
    Q,
    K,
    /// Before the MLP, on the residual stream after attention.
    Post,
}

/// The ops of one layer; `w` arguments index the model's parameters.
pub(crate) trait LayerOps {
    /// RMSNorm of `x` over its last dimension, with weight `w`.
    fn norm(&mut self, x: &Tensor, w: usize, at: NormAt) -> Result<Tensor>;
    /// The q, k and v projections of the normed input, split into heads ([.., T, n, hd]).
    fn qkv(&mut self, x: &Tensor, l: &Layer) -> Result<(Tensor, Tensor, Tensor)>;
    /// Rotary embedding of q and k at the row's positions.
    fn rope(&mut self, q: Tensor, k: Tensor) -> Result<(Tensor, Tensor)>;
    /// Softmax attention of layer `li`: the context, heads concatenated ([.., T, nh * hd]).
    fn attend(&mut self, li: usize, q: Tensor, k: Tensor, v: Tensor) -> Result<Tensor>;
    /// x W^T for weight `w` (no bias).
    fn linear(&mut self, x: &Tensor, w: usize) -> Result<Tensor>;
    /// silu(x W_gate^T) * (x W_up^T).
    fn gated(&mut self, x: &Tensor, l: &Layer) -> Result<Tensor>;
    /// The layer's output is formed (a recorder files what it kept).
    fn end_layer(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Layer `li` over the residual stream `h`: its output stream.
pub(crate) fn layer(o: &mut impl LayerOps, li: usize, l: &Layer, h: Tensor) -> Result<Tensor> {
    let x = o.norm(&h, l.input_norm, NormAt::Input)?;
    let (q, k, v) = o.qkv(&x, l)?;
    let (q, k) = match (l.q_norm, l.k_norm) {
        (Some(qn), Some(kn)) => (o.norm(&q, qn, NormAt::Q)?, o.norm(&k, kn, NormAt::K)?),
        _ => (q, k),
    };
    let (q, k) = o.rope(q, k)?;
    let ctx = o.attend(li, q, k, v)?;
    let h2 = (h + o.linear(&ctx, l.o)?)?;
    let m = o.norm(&h2, l.post_norm, NormAt::Post)?;
    let act = o.gated(&m, l)?;
    let h3 = (h2 + o.linear(&act, l.down)?)?;
    o.end_layer()?;
    Ok(h3)
}
