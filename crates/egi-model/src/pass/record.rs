//! [`Pass::record`]: the forward over one row, keeping what the backwards need; and
//! [`Pass::select_rows`], the pass of one sequence read out of a packed row.

use anyhow::{bail, Result};
use candle_core::{Tensor, D};

use super::ops::{lin, rms_norm_fwd, rope_heads};
use super::{Pass, Saved};
use crate::fastops;
use crate::model::{AttnInput, Transformer};

impl Pass {
    /// Record the forward of `ids` (one row) with `attn`'s positions and mask ([1, T] and
    /// [1, 1, T, T], e.g. [`AttnInput::packed`]). No autograd graph is built.
    pub fn record(model: &Transformer, ids: &[u32], attn: &AttnInput) -> Result<Pass> {
        Pass::record_keeping(model, ids, attn, true)
    }

    /// [`Pass::record`], keeping the MLP inputs of the weight gradients only when
    /// `for_weights` (a pass only the K-target backward reads does without them).
    fn record_keeping(
        model: &Transformer,
        ids: &[u32],
        attn: &AttnInput,
        for_weights: bool,
    ) -> Result<Pass> {
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
                m: for_weights.then_some(m),
                g,
                u,
                act: for_weights.then_some(act),
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

    /// Record one sequence alone (positions 0..T, causal mask) for the K-target backward:
    /// without the MLP inputs that only weight gradients read.
    pub fn record_causal(model: &Transformer, ids: &[u32]) -> Result<Pass> {
        let attn = AttnInput::causal(1, ids.len(), model.dtype(), model.device())?;
        Pass::record_keeping(model, ids, &attn, false)
    }

    /// Rows recorded.
    pub fn len(&self) -> usize {
        self.ids.dim(0).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pass of one sequence taken from a pass over a packed row: `rows` are the
    /// sequence's positions in that row, in order (a prompt and one of its responses; the
    /// packed mask lets them attend only to each other, so these are exactly the activations
    /// of the sequence alone). This saves the probe its own forward when the trainer has
    /// already recorded one. Like [`Pass::record_causal`], it is for the K-target backward:
    /// the MLP inputs of the weight gradients are left out.
    pub fn select_rows(&self, model: &Transformer, rows: &[u32]) -> Result<Pass> {
        let cfg = &model.cfg;
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let n_rep = cfg.n_rep();
        let n = rows.len();
        anyhow::ensure!(n > 0, "no rows selected");
        let idx = Tensor::from_slice(rows, n, model.device())?;
        let sel0 = |x: &Tensor| -> Result<Tensor> { Ok(x.index_select(&idx, 0)?) };
        let t_all = self.len();
        let mut layers = Vec::with_capacity(self.layers.len());
        for s in &self.layers {
            let pre = |p: &Option<(Tensor, Tensor)>| -> Result<Option<(Tensor, Tensor)>> {
                p.as_ref()
                    .map(|(x, r)| Ok((sel0(x)?, sel0(r)?)))
                    .transpose()
            };
            let qr =
                s.qr.reshape((nh, t_all, hd))?
                    .index_select(&idx, 1)?
                    .reshape((nkv, n_rep * n, hd))?;
            let probs = s
                .probs
                .reshape((nh, t_all, t_all))?
                .index_select(&idx, 1)?
                .index_select(&idx, 2)?
                .reshape((nkv, n_rep * n, n))?;
            layers.push(Saved {
                h: sel0(&s.h)?,
                r_in: sel0(&s.r_in)?,
                a: sel0(&s.a)?,
                q_pre: pre(&s.q_pre)?,
                k_pre: pre(&s.k_pre)?,
                qr,
                kr: s.kr.index_select(&idx, 1)?,
                v: s.v.index_select(&idx, 1)?,
                probs,
                ctx: sel0(&s.ctx)?,
                h2: sel0(&s.h2)?,
                r_post: sel0(&s.r_post)?,
                m: None,
                g: sel0(&s.g)?,
                u: sel0(&s.u)?,
                act: None,
            });
        }
        Ok(Pass {
            layers,
            ids: sel0(&self.ids)?,
            h_last: sel0(&self.h_last)?,
            r_final: sel0(&self.r_final)?,
            hidden: sel0(&self.hidden)?,
            cos: sel0(&self.cos)?,
            sin: sel0(&self.sin)?,
        })
    }
}
