//! A training pass with a hand-written backward: one recorded forward over a row of tokens
//! (any positions and additive mask, e.g. a packed group of responses), then the gradient of
//! every wanted weight from a cotangent on the final hidden states.
//!
//! Why not candle's autograd: its backward computes both operands' gradients of every op,
//! walks each broadcast and reshape, and allocates a tensor per step; on the default model it
//! takes about 3x the forward, two thirds of it outside the matmuls. Here the backward is its
//! matmuls plus a few elementwise passes, and weight gradients are only formed when wanted.
//! The forward uses the same formulas as [`Transformer::forward_hidden`]; tests check the
//! hidden states and every gradient against autograd (itself checked against finite
//! differences) on tiny models of every architecture.

use anyhow::{bail, Result};
use candle_core::{Tensor, D};

use crate::fastops;
use crate::model::{AttnInput, Transformer};

/// One layer's activations over the row (T positions). Public so that other passes over the
/// same activations (the probe's many-target backward) can reuse a recorded forward.
pub struct Saved {
    /// Residual stream entering the layer and its RMS factor [T, 1]; normed input a [T, H].
    pub h: Tensor,
    pub r_in: Tensor,
    pub a: Tensor,
    /// Qwen3: q / k before their per-head norm [T, n, hd] and the RMS factors [T, n, 1].
    pub q_pre: Option<(Tensor, Tensor)>,
    pub k_pre: Option<(Tensor, Tensor)>,
    /// Rotated q [nkv, n_rep*T, hd] (heads grouped by kv head), rotated k and v [nkv, T, hd].
    pub qr: Tensor,
    pub kr: Tensor,
    pub v: Tensor,
    /// Softmax weights [nkv, n_rep*T, T]; attention output [T, nh*hd].
    pub probs: Tensor,
    pub ctx: Tensor,
    pub h2: Tensor,
    pub r_post: Tensor,
    pub m: Tensor,
    pub g: Tensor,
    pub u: Tensor,
    pub act: Tensor,
}

/// A recorded forward pass over one row.
pub struct Pass {
    pub layers: Vec<Saved>,
    ids: Tensor,
    /// Residual stream after the last layer [T, H] and its final RMS factor [T, 1].
    pub h_last: Tensor,
    pub r_final: Tensor,
    /// Hidden states after the final norm, [T, H] (what the LM head reads).
    pub hidden: Tensor,
    cos: Tensor,
    sin: Tensor,
}

/// Gradients by parameter index (`Transformer::params` order); None when not wanted.
pub type Grads = Vec<Option<Tensor>>;

fn rms_factor(x: &Tensor, eps: f64) -> Result<Tensor> {
    Ok((x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?)
}

/// y = x r w: dx = r g - x r^3 mean(x g) with g = dy w.
fn rms_norm_bwd(x: &Tensor, r: &Tensor, w: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let g = dy.broadcast_mul(w)?;
    let xg = (&g * x)?.mean_keepdim(D::Minus1)?;
    let r3 = r.powf(3.0)?;
    Ok((g.broadcast_mul(r)? - x.broadcast_mul(&(xg * r3)?)?)?)
}

/// The weight gradient of y = x r w, summed over every leading dimension: sum dy x r.
fn rms_weight_grad(x: &Tensor, r: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let n = x.dim(D::Minus1)?;
    let p = (dy * x.broadcast_mul(r)?)?;
    Ok(p.reshape(((), n))?.sum(0)?)
}

/// y = x r w and r, by the fused kernel where it applies.
fn rms_norm_fwd(x: &Tensor, w: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    if let Some(yr) = fastops::rms_norm(x, w, eps)? {
        return Ok(yr);
    }
    let r = rms_factor(x, eps)?;
    Ok((x.broadcast_mul(&r)?.broadcast_mul(w)?, r))
}

/// dx of y = x r w, and the weight's gradient when `want_w`.
fn rms_bwd(
    x: &Tensor,
    r: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    want_w: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    if let Some(out) = fastops::rms_norm_bwd(x, r, w, dy, want_w)? {
        return Ok(out);
    }
    let dw = if want_w {
        Some(rms_weight_grad(x, r, dy)?)
    } else {
        None
    };
    Ok((rms_norm_bwd(x, r, w, dy)?, dw))
}

/// x [T, in] W[out, in]^T (+ b).
fn lin(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let y = x.matmul(&w.t()?)?;
    Ok(match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
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

struct Acc<'a> {
    grads: Grads,
    want: &'a dyn Fn(usize) -> bool,
}

impl Acc<'_> {
    fn wants(&self, i: usize) -> bool {
        (self.want)(i)
    }
    fn add(&mut self, i: usize, g: impl FnOnce() -> Result<Tensor>) -> Result<()> {
        if !(self.want)(i) {
            return Ok(());
        }
        let g = g()?;
        self.grads[i] = Some(match self.grads[i].take() {
            Some(x) => (x + g)?,
            None => g,
        });
        Ok(())
    }
}

impl Pass {
    /// Record the forward of `ids` (one row) with `attn`'s positions and mask ([1, T] and
    /// [1, 1, T, T], e.g. [`AttnInput::packed`]). No autograd graph is built.
    pub fn record(model: &Transformer, ids: &[u32], attn: &AttnInput) -> Result<Pass> {
        let cfg = &model.cfg;
        let dev = model.device();
        let t = ids.len();
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let n_rep = cfg.n_rep();
        let eps = cfg.rms_norm_eps;
        if attn.positions.dims() != [1, t] || attn.mask.dims() != [1, 1, t, t] {
            bail!(
                "training pass: positions {:?} / mask {:?} do not fit one row of {t} tokens",
                attn.positions.dims(),
                attn.mask.dims()
            );
        }
        let (cos_t, sin_t) = model.rope_tables();
        let pos = attn.positions.flatten_all()?;
        let pmax: u32 = pos.max(0)?.to_scalar()?;
        if pmax as usize >= cos_t.dim(0)? {
            bail!("position {pmax} is beyond the model's rope table");
        }
        let cos = cos_t.index_select(&pos, 0)?;
        let sin = sin_t.index_select(&pos, 0)?;
        let cos = Tensor::cat(&[&cos, &cos], D::Minus1)?; // [T, hd]
        let sin = Tensor::cat(&[&sin, &sin], D::Minus1)?;
        let mask = attn.mask.reshape((t, t))?.to_dtype(model.dtype())?;
        let scale = 1.0 / (hd as f64).sqrt();
        let w = |i: usize| model.w(i).detach();
        let idx = Tensor::from_slice(ids, t, dev)?;
        let mut h = w(model.embed).index_select(&idx, 0)?; // [T, H]
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for ly in &model.layers {
            let (a, r_in) = rms_norm_fwd(&h, &w(ly.input_norm), eps)?;
            let bias = |b: Option<usize>| b.map(w);
            let q = lin(&a, &w(ly.q), bias(ly.q_bias).as_ref())?.reshape((t, nh, hd))?;
            let k = lin(&a, &w(ly.k), bias(ly.k_bias).as_ref())?.reshape((t, nkv, hd))?;
            let v = lin(&a, &w(ly.v), bias(ly.v_bias).as_ref())?.reshape((t, nkv, hd))?;
            let (q, q_pre) = match ly.q_norm {
                Some(i) => {
                    let (y, r) = rms_norm_fwd(&q, &w(i), eps)?;
                    (y, Some((q, r)))
                }
                None => (q, None),
            };
            let (k, k_pre) = match ly.k_norm {
                Some(i) => {
                    let (y, r) = rms_norm_fwd(&k, &w(i), eps)?;
                    (y, Some((k, r)))
                }
                None => (k, None),
            };
            let qr = rope_heads(&q, &cos, &sin)?.reshape((nkv, n_rep * t, hd))?;
            let kr = rope_heads(&k, &cos, &sin)?;
            let v = v.transpose(0, 1)?.contiguous()?;
            let fused = fastops::attention_fwd(&qr.reshape((nh, t, hd))?, &kr, &v, &mask, scale)?;
            let (probs, ctx) = match fused {
                Some((p, c)) => (p.reshape((nkv, n_rep * t, t))?, c),
                None => {
                    let raw = qr.matmul(&kr.t()?)?.reshape((nh, t, t))?;
                    let probs = match fastops::masked_softmax(&raw, &mask, scale)? {
                        Some(p) => p,
                        // Inference-only fused softmax: this pass needs no autograd.
                        None => {
                            candle_nn::ops::softmax_last_dim(&(raw * scale)?.broadcast_add(&mask)?)?
                        }
                    }
                    .reshape((nkv, n_rep * t, t))?;
                    let ctx = probs
                        .matmul(&v)?
                        .reshape((nh, t, hd))?
                        .transpose(0, 1)?
                        .reshape((t, nh * hd))?;
                    (probs, ctx)
                }
            };
            let h2 = (&h + lin(&ctx, &w(ly.o), None)?)?;
            let (m, r_post) = rms_norm_fwd(&h2, &w(ly.post_norm), eps)?;
            let g = lin(&m, &w(ly.gate), None)?;
            let u = lin(&m, &w(ly.up), None)?;
            let act = match fastops::silu_mul(&g, &u)? {
                Some(y) => y,
                None => (g.silu()? * &u)?,
            };
            let h3 = (&h2 + lin(&act, &w(ly.down), None)?)?;
            layers.push(Saved {
                h,
                r_in,
                a,
                q_pre,
                k_pre,
                qr,
                kr,
                v,
                probs,
                ctx,
                h2,
                r_post,
                m,
                g,
                u,
                act,
            });
            h = h3;
        }
        let (hidden, r_final) = rms_norm_fwd(&h, &w(model.final_norm), eps)?;
        Ok(Pass {
            layers,
            ids: idx,
            h_last: h,
            r_final,
            hidden,
            cos,
            sin,
        })
    }

    /// Gradients of the scalar whose cotangent on [`Pass::hidden`] is `d_hidden` [T, H], for
    /// the parameters `want(index)` selects. The LM head's own gradient is the caller's (it
    /// knows the loss); the tied or untied embedding's gather gradient is added here.
    pub fn backward(
        &self,
        model: &Transformer,
        d_hidden: &Tensor,
        want: &dyn Fn(usize) -> bool,
    ) -> Result<Grads> {
        self.backward_into(model, d_hidden, want, None)
    }

    /// [`Pass::backward`], where `embed_base` is a gradient the caller already holds for the
    /// embedding (a tied head's): the gather's gradient is added into it, saving a zero
    /// tensor and a sum of the vocabulary-sized matrix.
    pub fn backward_into(
        &self,
        model: &Transformer,
        d_hidden: &Tensor,
        want: &dyn Fn(usize) -> bool,
        embed_base: Option<Tensor>,
    ) -> Result<Grads> {
        let cfg = &model.cfg;
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let n_rep = cfg.n_rep();
        let t = self.hidden.dim(0)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let w = |i: usize| model.w(i).detach();
        let mut acc = Acc {
            grads: vec![None; model.params().len()],
            want,
        };
        let (mut dh, dw) = rms_bwd(
            &self.h_last,
            &self.r_final,
            &w(model.final_norm),
            d_hidden,
            acc.wants(model.final_norm),
        )?;
        if let Some(dw) = dw {
            acc.add(model.final_norm, || Ok(dw))?;
        }
        // Nothing below the lowest layer holding a wanted weight needs a cotangent, unless
        // the embedding is wanted.
        let lowest = if acc.wants(model.embed) {
            0
        } else {
            (0..model.layers.len())
                .find(|&l| layer_params(model, l).iter().any(|&i| acc.wants(i)))
                .unwrap_or(model.layers.len())
        };
        for l in (lowest..model.layers.len()).rev() {
            let ly = &model.layers[l];
            let s = &self.layers[l];
            // MLP: h3 = h2 + act Wd^T, act = silu(g) u, g = m Wg^T, u = m Wu^T.
            acc.add(ly.down, || Ok(dh.t()?.matmul(&s.act)?))?;
            let d_act = dh.matmul(&w(ly.down))?; // [T, I]
            let (dg, du) = match fastops::silu_mul_bwd(&s.g, &s.u, &d_act)? {
                Some(x) => x,
                None => {
                    let sig = candle_nn::ops::sigmoid(&s.g)?;
                    let silu = (&s.g * &sig)?;
                    let dsilu = (&sig * ((&s.g * (1.0 - &sig)?)? + 1.0)?)?;
                    ((&d_act * (&s.u * dsilu)?)?, (&d_act * silu)?)
                }
            };
            acc.add(ly.gate, || Ok(dg.t()?.matmul(&s.m)?))?;
            acc.add(ly.up, || Ok(du.t()?.matmul(&s.m)?))?;
            let dm = (dg.matmul(&w(ly.gate))? + du.matmul(&w(ly.up))?)?;
            let (dx, dw) = rms_bwd(
                &s.h2,
                &s.r_post,
                &w(ly.post_norm),
                &dm,
                acc.wants(ly.post_norm),
            )?;
            if let Some(dw) = dw {
                acc.add(ly.post_norm, || Ok(dw))?;
            }
            let dh2 = (&dh + dx)?;
            // o: h2 = h + ctx Wo^T.
            acc.add(ly.o, || Ok(dh2.t()?.matmul(&s.ctx)?))?;
            let dctx = dh2.matmul(&w(ly.o))?; // [T, nh*hd]
            let fused = fastops::attention_bwd(
                &s.probs.reshape((nh, t, t))?,
                &s.qr.reshape((nh, t, hd))?,
                &s.kr,
                &s.v,
                &dctx,
                &[t],
                &self.cos,
                &self.sin,
                scale,
            )?;
            let (dq, dk, dv) = match fused {
                Some((dq, dk, dv)) => (dq.reshape((t, nh, hd))?, dk.reshape((t, nkv, hd))?, dv),
                None => {
                    let dctx_g = dctx
                        .reshape((t, nh, hd))?
                        .transpose(0, 1)?
                        .contiguous()?
                        .reshape((nkv, n_rep * t, hd))?;
                    // ctx = P v: dP = dctx v^T, dv = P^T dctx (summed over the heads sharing v).
                    let dp = dctx_g.matmul(&s.v.t()?)?; // [nkv, n_rep*T, T]
                    let dv = s.probs.t()?.matmul(&dctx_g)?; // [nkv, T, hd]
                                                            // Softmax, then the score scale: dS = scale P (dP - sum(dP P)).
                    let ds = match fastops::softmax_bwd(&s.probs, &dp, scale)? {
                        Some(ds) => ds,
                        None => {
                            let inner = (&dp * &s.probs)?.sum_keepdim(D::Minus1)?;
                            ((dp.broadcast_sub(&inner)? * &s.probs)? * scale)?
                        }
                    };
                    let dqr = ds.matmul(&s.kr)?.reshape((nh, t, hd))?;
                    let dkr = ds.t()?.matmul(&s.qr)?; // [nkv, T, hd]
                    let dq = rope_heads_bwd(&dqr, &self.cos, &self.sin)?; // [T, nh, hd]
                    let dk = rope_heads_bwd(&dkr, &self.cos, &self.sin)?; // [T, nkv, hd]
                    let dv = dv.transpose(0, 1)?.contiguous()?.reshape((t, nkv * hd))?;
                    (dq, dk, dv)
                }
            };
            let dq = match (&s.q_pre, ly.q_norm) {
                (Some((x, r)), Some(i)) => {
                    let (dx, dw) = rms_bwd(x, r, &w(i), &dq.contiguous()?, acc.wants(i))?;
                    if let Some(dw) = dw {
                        acc.add(i, || Ok(dw))?;
                    }
                    dx
                }
                _ => dq,
            };
            let dk = match (&s.k_pre, ly.k_norm) {
                (Some((x, r)), Some(i)) => {
                    let (dx, dw) = rms_bwd(x, r, &w(i), &dk.contiguous()?, acc.wants(i))?;
                    if let Some(dw) = dw {
                        acc.add(i, || Ok(dw))?;
                    }
                    dx
                }
                _ => dk,
            };
            let dq = dq.contiguous()?.reshape((t, nh * hd))?;
            let dk = dk.contiguous()?.reshape((t, nkv * hd))?;
            for (d, wi, bi) in [
                (&dq, ly.q, ly.q_bias),
                (&dk, ly.k, ly.k_bias),
                (&dv, ly.v, ly.v_bias),
            ] {
                acc.add(wi, || Ok(d.t()?.matmul(&s.a)?))?;
                if let Some(bi) = bi {
                    acc.add(bi, || Ok(d.sum(0)?))?;
                }
            }
            let da = ((dq.matmul(&w(ly.q))? + dk.matmul(&w(ly.k))?)? + dv.matmul(&w(ly.v))?)?;
            let (dx, dw) = rms_bwd(
                &s.h,
                &s.r_in,
                &w(ly.input_norm),
                &da,
                acc.wants(ly.input_norm),
            )?;
            if let Some(dw) = dw {
                acc.add(ly.input_norm, || Ok(dw))?;
            }
            dh = (dh2 + dx)?;
        }
        if lowest == 0 {
            let base = match embed_base {
                Some(b) => b,
                None => w(model.embed).zeros_like()?,
            };
            acc.add(model.embed, || Ok(base.index_add(&self.ids, &dh, 0)?))?;
        }
        Ok(acc.grads)
    }
}

/// Every parameter index of layer `l`.
fn layer_params(model: &Transformer, l: usize) -> Vec<usize> {
    let ly = &model.layers[l];
    let mut v = vec![
        ly.input_norm,
        ly.q,
        ly.k,
        ly.v,
        ly.o,
        ly.post_norm,
        ly.gate,
        ly.up,
        ly.down,
    ];
    v.extend(
        [ly.q_bias, ly.k_bias, ly.v_bias, ly.q_norm, ly.k_norm]
            .into_iter()
            .flatten(),
    );
    v
}

impl Transformer {
    /// Index (in [`Transformer::params`]) of the LM head's weight: the embedding when tied.
    pub fn lm_head_index(&self) -> usize {
        self.lm_head.unwrap_or(self.embed)
    }

    /// Index (in [`Transformer::params`]) of the token embedding.
    pub fn embed_index(&self) -> usize {
        self.embed
    }
}
