//! [`Pass::backward`]: the gradient of every wanted weight from one cotangent on the final
//! hidden states (the training step's backward).

use anyhow::Result;
use candle_core::{Tensor, D};

use super::ops::{rms_bwd, rope_heads_bwd};
use super::{Grads, Pass};
use crate::fastops;
use crate::model::Transformer;

struct GradSum<'a> {
    grads: Grads,
    want: &'a dyn Fn(usize) -> bool,
}

impl GradSum<'_> {
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
        let mut acc = GradSum {
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
            let no_mlp_inputs = || {
                anyhow::anyhow!(
                    "weight gradients need a pass recorded by Pass::record (this one was recorded for the fingerprint only)"
                )
            };
            let (m, act) = (
                s.m.as_ref().ok_or_else(no_mlp_inputs)?,
                s.act.as_ref().ok_or_else(no_mlp_inputs)?,
            );
            acc.add(ly.down, || Ok(dh.t()?.matmul(act)?))?;
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
            acc.add(ly.gate, || Ok(dg.t()?.matmul(m)?))?;
            acc.add(ly.up, || Ok(du.t()?.matmul(m)?))?;
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
