//! [`Pass::record`]: the forward over one row, keeping what the backwards need; and
//! [`Pass::select_rows`], the pass of one sequence read out of a packed row.

use anyhow::{bail, Result};
use candle_core::{Tensor, D};

use super::ops::{lin, rms_norm_fwd, rope_heads};
use super::{Pass, Saved};
use crate::fastops;
use crate::layer::{self, LayerOps, NormAt};
use crate::model::{AttnInput, Layer, Transformer};

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
        let hd = cfg.head_dim;
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
        let idx = Tensor::from_slice(ids, t, dev)?;
        let mut rec = Recorder {
            model,
            t,
            cos: &cos,
            sin: &sin,
            mask,
            scale: 1.0 / (hd as f64).sqrt(),
            for_weights,
            cur: Cur::default(),
            layers: Vec::with_capacity(cfg.num_layers),
        };
        let mut h = model.w(model.embed).detach().index_select(&idx, 0)?; // [T, H]
        for (li, ly) in model.layers.iter().enumerate() {
            h = layer::layer(&mut rec, li, ly, h)?;
        }
        let layers = rec.layers;
        let w = |i: usize| model.w(i).detach();
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

/// The layer's ops over one row [T, ..], keeping what the backwards read ([`Saved`]).
struct Recorder<'a> {
    model: &'a Transformer,
    t: usize,
    /// Rotary tables at the row's positions [T, hd]; the additive mask [T, T].
    cos: &'a Tensor,
    sin: &'a Tensor,
    mask: Tensor,
    scale: f64,
    /// Keep the MLP inputs of the weight gradients.
    for_weights: bool,
    cur: Cur,
    layers: Vec<Saved>,
}

/// The current layer's activations as its ops produce them.
#[derive(Default)]
struct Cur {
    h: Option<Tensor>,
    r_in: Option<Tensor>,
    a: Option<Tensor>,
    q_pre: Option<(Tensor, Tensor)>,
    k_pre: Option<(Tensor, Tensor)>,
    qr: Option<Tensor>,
    kr: Option<Tensor>,
    v: Option<Tensor>,
    probs: Option<Tensor>,
    ctx: Option<Tensor>,
    h2: Option<Tensor>,
    r_post: Option<Tensor>,
    m: Option<Tensor>,
    g: Option<Tensor>,
    u: Option<Tensor>,
    act: Option<Tensor>,
}

impl Recorder<'_> {
    fn w(&self, i: usize) -> Tensor {
        self.model.w(i).detach()
    }
}

fn kept(t: Option<Tensor>, what: &str) -> Result<Tensor> {
    t.ok_or_else(|| anyhow::anyhow!("recorded pass: the layer produced no {what}"))
}

impl LayerOps for Recorder<'_> {
    fn norm(&mut self, x: &Tensor, w: usize, at: NormAt) -> Result<Tensor> {
        let eps = self.model.cfg.rms_norm_eps;
        let (y, r) = rms_norm_fwd(x, &self.w(w), eps)?;
        let c = &mut self.cur;
        match at {
            NormAt::Input => {
                c.h = Some(x.clone());
                c.r_in = Some(r);
                c.a = Some(y.clone());
            }
            NormAt::Q => c.q_pre = Some((x.clone(), r)),
            NormAt::K => c.k_pre = Some((x.clone(), r)),
            NormAt::Post => {
                c.h2 = Some(x.clone());
                c.r_post = Some(r);
                if self.for_weights {
                    c.m = Some(y.clone());
                }
            }
        }
        Ok(y)
    }

    fn qkv(&mut self, x: &Tensor, l: &Layer) -> Result<(Tensor, Tensor, Tensor)> {
        let cfg = &self.model.cfg;
        let (t, nh, nkv, hd) = (self.t, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let bias = |b: Option<usize>| b.map(|i| self.w(i));
        Ok((
            lin(x, &self.w(l.q), bias(l.q_bias).as_ref())?.reshape((t, nh, hd))?,
            lin(x, &self.w(l.k), bias(l.k_bias).as_ref())?.reshape((t, nkv, hd))?,
            lin(x, &self.w(l.v), bias(l.v_bias).as_ref())?.reshape((t, nkv, hd))?,
        ))
    }

    fn rope(&mut self, q: Tensor, k: Tensor) -> Result<(Tensor, Tensor)> {
        let cfg = &self.model.cfg;
        let (nkv, n_rep, hd) = (cfg.num_kv_heads, cfg.n_rep(), cfg.head_dim);
        // q grouped by kv head [nkv, n_rep*T, hd]: one matmul per kv head in attention.
        let qr = rope_heads(&q, self.cos, self.sin)?.reshape((nkv, n_rep * self.t, hd))?;
        let kr = rope_heads(&k, self.cos, self.sin)?;
        Ok((qr, kr))
    }

    fn attend(&mut self, _li: usize, qr: Tensor, kr: Tensor, v: Tensor) -> Result<Tensor> {
        let cfg = &self.model.cfg;
        let (t, nh, nkv, hd) = (self.t, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let n_rep = cfg.n_rep();
        let (mask, scale) = (&self.mask, self.scale);
        let v = v.transpose(0, 1)?.contiguous()?;
        let fused = fastops::attention_fwd(&qr.reshape((nh, t, hd))?, &kr, &v, mask, scale)?;
        let (probs, ctx) = match fused {
            Some((p, c)) => (p.reshape((nkv, n_rep * t, t))?, c),
            None => {
                let raw = qr.matmul(&kr.t()?)?.reshape((nh, t, t))?;
                let probs = match fastops::masked_softmax(&raw, mask, scale)? {
                    Some(p) => p,
                    // Inference-only fused softmax: this pass needs no autograd.
                    None => candle_nn::ops::softmax_last_dim(&(raw * scale)?.broadcast_add(mask)?)?,
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
        let c = &mut self.cur;
        c.qr = Some(qr);
        c.kr = Some(kr);
        c.v = Some(v);
        c.probs = Some(probs);
        c.ctx = Some(ctx.clone());
        Ok(ctx)
    }

    fn linear(&mut self, x: &Tensor, w: usize) -> Result<Tensor> {
        lin(x, &self.w(w), None)
    }

    fn gated(&mut self, x: &Tensor, l: &Layer) -> Result<Tensor> {
        let g = lin(x, &self.w(l.gate), None)?;
        let u = lin(x, &self.w(l.up), None)?;
        let act = match fastops::silu_mul(&g, &u)? {
            Some(y) => y,
            None => (g.silu()? * &u)?,
        };
        let c = &mut self.cur;
        c.g = Some(g);
        c.u = Some(u);
        if self.for_weights {
            c.act = Some(act.clone());
        }
        Ok(act)
    }

    fn end_layer(&mut self) -> Result<()> {
        let c = std::mem::take(&mut self.cur);
        self.layers.push(Saved {
            h: kept(c.h, "input")?,
            r_in: kept(c.r_in, "input norm")?,
            a: kept(c.a, "normed input")?,
            q_pre: c.q_pre,
            k_pre: c.k_pre,
            qr: kept(c.qr, "rotated q")?,
            kr: kept(c.kr, "rotated k")?,
            v: kept(c.v, "v")?,
            probs: kept(c.probs, "attention weights")?,
            ctx: kept(c.ctx, "attention output")?,
            h2: kept(c.h2, "post-attention stream")?,
            r_post: kept(c.r_post, "post norm")?,
            m: c.m,
            g: kept(c.g, "gate")?,
            u: kept(c.u, "up")?,
            act: c.act,
        });
        Ok(())
    }
}
