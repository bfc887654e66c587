//! A forward pass that keeps what the backward needs, and a hand-written backward for many
//! targets at once.
//!
//! The fingerprint needs, for every response token t, the gradient of one scalar (its logit)
//! at the output of every q/k/v/o projection: G = D^T X per matrix. Autograd would need a
//! forward per target (candle keeps one graph per forward and computes weight gradients we do
//! not want). Here one forward is recorded, and the backward runs for K targets at once over
//! the shared activations, each target over its own causal prefix (the rows past it carry no
//! cotangent). Each op's backward sits beside the forward it inverts; tests check the
//! result against autograd + full SVD (the oracle) to 1e-5 in f64.

use anyhow::{Context, Result};
use candle_core::{DType, Tensor, D};
use egi_model::backprop::{rope_heads, rope_heads_bwd};
use egi_model::{fastops, Transformer};

/// The four attention projections, in the order the fixtures use (q, k, v, o per layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proj {
    Q,
    K,
    V,
    O,
}

impl Proj {
    pub const ALL: [Proj; 4] = [Proj::Q, Proj::K, Proj::V, Proj::O];
    pub fn name(self) -> &'static str {
        match self {
            Proj::Q => "q",
            Proj::K => "k",
            Proj::V => "v",
            Proj::O => "o",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Activations of one layer over the whole sequence (T rows).
pub struct LayerTape {
    /// Residual stream entering the layer [T, H], and its RMS factor [T, 1].
    h: Tensor,
    r_in: Tensor,
    /// Normed input: the X of q, k and v [T, H].
    pub a: Tensor,
    /// Qwen3: q and k before their per-head norm [T, n, hd], and the RMS factors [T, n, 1].
    q_pre: Option<(Tensor, Tensor)>,
    k_pre: Option<(Tensor, Tensor)>,
    /// Rotated q [nh, T, hd] and k [nkv, T, hd]; v [nkv, T, hd]; softmax probs [nh, T, T].
    qr: Tensor,
    kr: Tensor,
    v: Tensor,
    probs: Tensor,
    /// Attention output: the X of o [T, nh*hd].
    pub ctx: Tensor,
    h2: Tensor,
    r_post: Tensor,
    g: Tensor,
    u: Tensor,
}

pub struct Tape {
    pub layers: Vec<LayerTape>,
    h_last: Tensor,
    r_final: Tensor,
    /// Logits at positions `logits_start..T`, [T - logits_start, V].
    pub logits: Tensor,
    pub logits_start: usize,
    cos: Tensor,
    sin: Tensor,
    pub len: usize,
}

/// RMS factor 1/sqrt(mean(x^2) + eps) over the last dimension (kept for the backward).
fn rms_factor(x: &Tensor, eps: f64) -> Result<Tensor> {
    Ok((x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?)
}

/// Backward of y = x * r * w (r the RMS factor of x): with g = dy * w,
/// dx = r g - x r^3 mean(x g). `x`, `r` are shared by the K stacked cotangents `dy`.
fn rms_norm_bwd(x: &Tensor, r: &Tensor, w: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let g = dy.broadcast_mul(w)?;
    let xg = g.broadcast_mul(x)?.mean_keepdim(D::Minus1)?;
    let r3 = r.powf(3.0)?;
    Ok((g.broadcast_mul(r)? - xg.broadcast_mul(&r3)?.broadcast_mul(x)?)?)
}

/// y = x r w and r: egi-model's fused f32 kernel where it applies, else candle ops.
fn rms_norm_fwd(x: &Tensor, w: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    if let Some(yr) = fastops::rms_norm(x, w, eps)? {
        return Ok(yr);
    }
    let r = rms_factor(x, eps)?;
    Ok((x.broadcast_mul(&r)?.broadcast_mul(w)?, r))
}

/// [`rms_norm_bwd`] for K stacked cotangents, by the fused kernel where it applies.
fn rms_bwd(x: &Tensor, r: &Tensor, w: &Tensor, dy: &Tensor) -> Result<Tensor> {
    if let (true, Some((dx, _))) = (
        x.is_contiguous() && r.is_contiguous(),
        fastops::rms_norm_bwd(x, r, w, &dy.contiguous()?, false)?,
    ) {
        return Ok(dx);
    }
    rms_norm_bwd(x, r, w, dy)
}

/// x [.., in] @ w[out, in]^T (+ b).
fn lin(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let mut out = dims.clone();
    *out.last_mut().unwrap() = w.dim(0)?;
    let y = x
        .reshape((rows, dims[dims.len() - 1]))?
        .matmul(&w.t()?)?
        .reshape(out)?;
    Ok(match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

/// dy [.., out] @ w[out, in]: the input gradient of `lin`.
fn lin_bwd(dy: &Tensor, w: &Tensor) -> Result<Tensor> {
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

/// The first lens[k] rows of `x` for every target k, one block after another.
fn packed_rows(x: &Tensor, lens: &[usize]) -> Result<Tensor> {
    let parts = lens
        .iter()
        .map(|&n| x.narrow(0, 0, n))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

impl Tape {
    /// Record the forward pass of one sequence `ids` (no padding, positions 0..T).
    pub fn record(model: &Transformer, ids: &[u32]) -> Result<Tape> {
        let cfg = &model.cfg;
        let dev = model.device();
        let t = ids.len();
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let n_rep = cfg.n_rep();
        let eps = cfg.rms_norm_eps;
        let (cos_t, sin_t) = model.rope_tables();
        if t > cos_t.dim(0)? {
            anyhow::bail!("sequence of {t} tokens is longer than the rope table");
        }
        let cos = cos_t.narrow(0, 0, t)?;
        let sin = sin_t.narrow(0, 0, t)?;
        let cos = Tensor::cat(&[&cos, &cos], D::Minus1)?; // [T, hd]
        let sin = Tensor::cat(&[&sin, &sin], D::Minus1)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let mask: Vec<f64> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { -1e30 }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), dev)?.to_dtype(model.dtype())?;
        let idx = Tensor::new(ids, dev)?;
        let mut h = model.embed_weight().index_select(&idx, 0)?; // [T, H]
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for l in 0..cfg.num_layers {
            let w = model.layer_view(l);
            let (a, r_in) = rms_norm_fwd(&h, w.input_norm, eps)?;
            let q = lin(&a, w.q, w.q_bias)?.reshape((t, nh, hd))?;
            let k = lin(&a, w.k, w.k_bias)?.reshape((t, nkv, hd))?;
            let v = lin(&a, w.v, w.v_bias)?.reshape((t, nkv, hd))?;
            let (q, q_pre) = match w.q_norm {
                Some(qn) => {
                    let (y, r) = rms_norm_fwd(&q, qn, eps)?;
                    (y, Some((q, r)))
                }
                None => (q, None),
            };
            let (k, k_pre) = match w.k_norm {
                Some(kn) => {
                    let (y, r) = rms_norm_fwd(&k, kn, eps)?;
                    (y, Some((k, r)))
                }
                None => (k, None),
            };
            let qr = rope_heads(&q, &cos, &sin)?; // [nh, T, hd]
            let kr = rope_heads(&k, &cos, &sin)?; // [nkv, T, hd]
            let v = v.transpose(0, 1)?.contiguous()?; // [nkv, T, hd]
            let (probs, ctx) = match fastops::attention_fwd(&qr, &kr, &v, &mask, scale)? {
                Some(pc) => pc,
                None => {
                    let raw = qr
                        .reshape((nkv, n_rep * t, hd))?
                        .matmul(&kr.t()?)?
                        .reshape((nh, t, t))?;
                    let probs = match fastops::masked_softmax(&raw, &mask, scale)? {
                        Some(p) => p,
                        None => candle_nn::ops::softmax(
                            &(raw * scale)?.broadcast_add(&mask)?,
                            D::Minus1,
                        )?,
                    };
                    let ctx = probs
                        .reshape((nkv, n_rep * t, t))?
                        .matmul(&v)?
                        .reshape((nh, t, hd))?
                        .transpose(0, 1)?
                        .reshape((t, nh * hd))?;
                    (probs, ctx)
                }
            };
            let h2 = (&h + lin(&ctx, w.o, None)?)?;
            let (m, r_post) = rms_norm_fwd(&h2, w.post_norm, eps)?;
            let g = lin(&m, w.gate, None)?;
            let u = lin(&m, w.up, None)?;
            let act = match fastops::silu_mul(&g, &u)? {
                Some(y) => y,
                None => (g.silu()? * &u)?,
            };
            let h3 = (&h2 + lin(&act, w.down, None)?)?;
            layers.push(LayerTape {
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
                g,
                u,
            });
            h = h3;
        }
        let (hf, r_final) = rms_norm_fwd(&h, model.final_norm_weight(), eps)?;
        let logits = hf.matmul(&model.lm_head_weight().t()?)?;
        Ok(Tape {
            layers,
            h_last: h,
            r_final,
            logits,
            logits_start: 0,
            cos,
            sin,
            len: t,
        })
    }

    /// The tape of one sequence taken from a recorded training pass over a packed row
    /// (`egi_model::backprop::Pass`): `rows` are the sequence's positions in that row, in
    /// order, with rotary positions 0..n (a prompt and one of its responses; the packed mask
    /// lets them attend only to each other, so these are exactly the activations of the
    /// sequence alone). Logits are computed for rows `logits_from..`. This saves the probe's
    /// own forward when the trainer has already recorded one.
    pub fn from_pass(
        model: &Transformer,
        pass: &egi_model::backprop::Pass,
        rows: &[u32],
        logits_from: usize,
    ) -> Result<Tape> {
        let cfg = &model.cfg;
        let (nh, hd) = (cfg.num_heads, cfg.head_dim);
        let n = rows.len();
        anyhow::ensure!(logits_from < n, "no rows for the logits");
        let dev = model.device();
        let idx = Tensor::from_slice(rows, n, dev)?;
        let sel0 = |x: &Tensor| -> Result<Tensor> { Ok(x.index_select(&idx, 0)?) };
        let t_all = pass.h_last.dim(0)?;
        let mut layers = Vec::with_capacity(pass.layers.len());
        for s in &pass.layers {
            let pre = |p: &Option<(Tensor, Tensor)>| -> Result<Option<(Tensor, Tensor)>> {
                p.as_ref()
                    .map(|(x, r)| Ok((sel0(x)?, sel0(r)?)))
                    .transpose()
            };
            let qr = s.qr.reshape((nh, t_all, hd))?.index_select(&idx, 1)?;
            let probs = s
                .probs
                .reshape((nh, t_all, t_all))?
                .index_select(&idx, 1)?
                .index_select(&idx, 2)?;
            layers.push(LayerTape {
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
                g: sel0(&s.g)?,
                u: sel0(&s.u)?,
            });
        }
        let (cos_t, sin_t) = model.rope_tables();
        let cos = cos_t.narrow(0, 0, n)?;
        let sin = sin_t.narrow(0, 0, n)?;
        let hf = sel0(&pass.hidden)?.narrow(0, logits_from, n - logits_from)?;
        Ok(Tape {
            layers,
            h_last: sel0(&pass.h_last)?,
            r_final: sel0(&pass.r_final)?,
            logits: hf.matmul(&model.lm_head_weight().t()?)?,
            logits_start: logits_from,
            cos: Tensor::cat(&[&cos, &cos], D::Minus1)?,
            sin: Tensor::cat(&[&sin, &sin], D::Minus1)?,
            len: n,
        })
    }

    /// Backward of K scalars at once, each over its own causal prefix: `lens[k]` rows for
    /// target k, whose seeds `seeds[k]` are (row < lens[k], cotangent on the final normed
    /// hidden state [H]) pairs. Rows past a target's prefix get no cotangent from it, so they
    /// are skipped rather than carried as zeros. The K prefixes are packed one after another
    /// into N = sum(lens) rows: the row-wise parts (linear maps, norms, the MLP) run as one
    /// product over all targets, attention runs per target over its own prefix. For every
    /// layer (last first) `visit(layer, proj, D)` receives the packed output gradients
    /// D [N, out] of the projection; target k's rows start at lens[0] + ... + lens[k-1].
    pub fn backward(
        &self,
        model: &Transformer,
        lens: &[usize],
        seeds: &[Vec<(usize, Tensor)>],
        want: impl Fn(usize, Proj) -> bool,
        mut visit: impl FnMut(usize, Proj, &Tensor) -> Result<()>,
    ) -> Result<()> {
        let cfg = &model.cfg;
        let dev = model.device();
        let dt = model.dtype();
        let hsz = cfg.hidden_size;
        anyhow::ensure!(
            lens.len() == seeds.len(),
            "{} prefixes for {} targets",
            lens.len(),
            seeds.len()
        );
        if let Some(&n) = lens.iter().find(|&&n| n == 0 || n > self.len) {
            anyhow::bail!("a prefix of {n} rows on a tape of {} rows", self.len);
        }
        let offs = fastops::prefix_offsets(lens);
        let n_all: usize = lens.iter().sum();
        // Seed cotangents on the final normed hidden state, [N, H].
        let mut dhf = vec![0f64; n_all * hsz];
        for (k, s) in seeds.iter().enumerate() {
            for (row, c) in s {
                anyhow::ensure!(
                    *row < lens[k],
                    "seed row {row} outside the prefix of {} rows",
                    lens[k]
                );
                let c: Vec<f64> = c.to_dtype(DType::F64)?.to_vec1()?;
                let base = (offs[k] + row) * hsz;
                for (i, x) in c.iter().enumerate() {
                    dhf[base + i] += x;
                }
            }
        }
        let dhf = Tensor::from_vec(dhf, (n_all, hsz), dev)?.to_dtype(dt)?;
        // An activation's rows under each target's prefix, packed like the cotangents.
        let packed = |x: &Tensor| packed_rows(x, lens);
        let mut dh = rms_bwd(
            &packed(&self.h_last)?,
            &packed(&self.r_final)?,
            model.final_norm_weight(),
            &dhf,
        )?;
        // Nothing below the lowest wanted layer is visited: the backward stops there (a
        // fingerprint of the top layers only costs a fraction of a full backward).
        let lowest = (0..cfg.num_layers)
            .find(|&l| Proj::ALL.iter().any(|&p| want(l, p)))
            .unwrap_or(cfg.num_layers);
        for l in (lowest..cfg.num_layers).rev() {
            let w = model.layer_view(l);
            let tp = &self.layers[l];
            // MLP: h3 = h2 + down(silu(g) * u), g/u from m = norm(h2).
            let g = packed(&tp.g)?;
            let u = packed(&tp.u)?;
            let d_act = lin_bwd(&dh, w.down)?; // [N, I]
            let (dg, du) = match fastops::silu_mul_bwd(&g, &u, &d_act)? {
                Some(x) => x,
                None => {
                    let sig = candle_nn::ops::sigmoid(&g)?;
                    let silu = (&g * &sig)?;
                    let dsilu = (&sig * ((&g * (sig.neg()? + 1.0)?)? + 1.0)?)?;
                    ((&d_act * (u * dsilu)?)?, (&d_act * &silu)?)
                }
            };
            let dm = (lin_bwd(&dg, w.gate)? + lin_bwd(&du, w.up)?)?;
            let dh2 = (&dh + rms_bwd(&packed(&tp.h2)?, &packed(&tp.r_post)?, w.post_norm, &dm)?)?;
            // o: h2 = h + ctx Wo^T, so D_o = dh2.
            if want(l, Proj::O) {
                visit(l, Proj::O, &dh2)?;
            }
            let dctx = lin_bwd(&dh2, w.o)?; // [N, nh*hd]
            let (dq, dk, dv) = self.attention_bwd_all(model, l, &dctx, lens, &offs)?;
            for (proj, d) in [(Proj::Q, &dq), (Proj::K, &dk), (Proj::V, &dv)] {
                if want(l, proj) {
                    visit(l, proj, d)?;
                }
            }
            if l == lowest {
                break; // nothing below needs a cotangent
            }
            let da = ((lin_bwd(&dq, w.q)? + lin_bwd(&dk, w.k)?)? + lin_bwd(&dv, w.v)?)?;
            dh = (dh2 + rms_bwd(&packed(&tp.h)?, &packed(&tp.r_in)?, w.input_norm, &da)?)?;
        }
        Ok(())
    }

    /// Attention's backward for every target (its rows of the packed `dctx` [N, nh*hd]), to
    /// the packed cotangents on q, k and v (before any q/k norm): the fused f32 kernel, else
    /// candle ops per target.
    fn attention_bwd_all(
        &self,
        model: &Transformer,
        l: usize,
        dctx: &Tensor,
        lens: &[usize],
        offs: &[usize],
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let cfg = &model.cfg;
        let w = model.layer_view(l);
        let tp = &self.layers[l];
        let scale = 1.0 / (cfg.head_dim as f64).sqrt();
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let fused = fastops::attention_bwd(
            &tp.probs, &tp.qr, &tp.kr, &tp.v, dctx, lens, &self.cos, &self.sin, scale,
        )?;
        let Some((dq, dk, dv)) = fused else {
            let (mut dqs, mut dks, mut dvs) = (vec![], vec![], vec![]);
            for (&n, &at) in lens.iter().zip(offs) {
                let (dq, dk, dv) = self.attention_bwd(model, l, &dctx.narrow(0, at, n)?)?;
                dqs.push(dq);
                dks.push(dk);
                dvs.push(dv);
            }
            return Ok((
                Tensor::cat(&dqs, 0)?,
                Tensor::cat(&dks, 0)?,
                Tensor::cat(&dvs, 0)?,
            ));
        };
        // Qwen3's per-head q/k norms, on the packed rows.
        let packed = |x: &Tensor| packed_rows(x, lens);
        let n_all = dq.dim(0)?;
        let dq = match (&tp.q_pre, w.q_norm) {
            (Some((x, r)), Some(wn)) => {
                let d = dq.reshape((n_all, nh, hd))?;
                rms_bwd(&packed(x)?, &packed(r)?, wn, &d)?.reshape((n_all, nh * hd))?
            }
            _ => dq,
        };
        let dk = match (&tp.k_pre, w.k_norm) {
            (Some((x, r)), Some(wn)) => {
                let d = dk.reshape((n_all, nkv, hd))?;
                rms_bwd(&packed(x)?, &packed(r)?, wn, &d)?.reshape((n_all, nkv * hd))?
            }
            _ => dk,
        };
        Ok((dq, dk, dv))
    }

    /// Attention's backward over the first n rows of layer `l`, from the cotangent on its
    /// output dctx [n, nh*hd] to those on q, k and v (before rope and any q/k norm):
    /// [n, nh*hd], [n, nkv*hd], [n, nkv*hd].
    fn attention_bwd(
        &self,
        model: &Transformer,
        l: usize,
        dctx: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let cfg = &model.cfg;
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let n_rep = cfg.n_rep();
        let scale = 1.0 / (hd as f64).sqrt();
        let w = model.layer_view(l);
        let tp = &self.layers[l];
        let n = dctx.dim(0)?;
        let rows_of = |x: &Tensor| x.narrow(0, 0, n);
        // Heads grouped by the kv head they share: [nkv, n_rep*n, hd].
        let dctx_g = dctx
            .reshape((n, nh, hd))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((nkv, n_rep * n, hd))?;
        let probs = tp.probs.narrow(1, 0, n)?.narrow(2, 0, n)?.contiguous()?; // [nh, n, n]
        let probs_g = probs.reshape((nkv, n_rep * n, n))?;
        let v = tp.v.narrow(1, 0, n)?.contiguous()?; // [nkv, n, hd]
        let kr = tp.kr.narrow(1, 0, n)?.contiguous()?;
        let qr_g = tp
            .qr
            .narrow(1, 0, n)?
            .contiguous()?
            .reshape((nkv, n_rep * n, hd))?;
        // ctx = P v  ->  dP = dctx v^T, dv = P^T dctx (summed over the group).
        let dp = dctx_g.matmul(&v.t()?)?; // [nkv, n_rep*n, n]
        let dv = probs_g.t()?.matmul(&dctx_g)?; // [nkv, n, hd]
                                                // Softmax, then S = qr kr^T * scale: dS = scale P (dP - sum(dP P)).
        let ds = match fastops::softmax_bwd(&probs_g, &dp, scale)? {
            Some(ds) => ds,
            None => {
                let inner = (&dp * &probs_g)?.sum_keepdim(D::Minus1)?;
                (dp.broadcast_sub(&inner)?.mul(&probs_g)? * scale)?
            }
        };
        let dqr = ds.matmul(&kr)?.reshape((nh, n, hd))?;
        let dkr = ds.t()?.matmul(&qr_g)?; // [nkv, n, hd]
        let cos = rows_of(&self.cos)?;
        let sin = rows_of(&self.sin)?;
        let dq = rope_heads_bwd(&dqr, &cos, &sin)?; // [n, nh, hd]
        let dk = rope_heads_bwd(&dkr, &cos, &sin)?; // [n, nkv, hd]
        let dq = match (&tp.q_pre, w.q_norm) {
            (Some((x, r)), Some(wn)) => rms_bwd(&rows_of(x)?, &rows_of(r)?, wn, &dq)?,
            _ => dq,
        };
        let dk = match (&tp.k_pre, w.k_norm) {
            (Some((x, r)), Some(wn)) => rms_bwd(&rows_of(x)?, &rows_of(r)?, wn, &dk)?,
            _ => dk,
        };
        Ok((
            dq.contiguous()?.reshape((n, nh * hd))?,
            dk.contiguous()?.reshape((n, nkv * hd))?,
            dv.transpose(0, 1)?.contiguous()?.reshape((n, nkv * hd))?,
        ))
    }

    /// The X of a projection: rows of its input, [T, in].
    pub fn input_of(&self, layer: usize, proj: Proj) -> &Tensor {
        let tp = &self.layers[layer];
        match proj {
            Proj::O => &tp.ctx,
            _ => &tp.a,
        }
    }

    /// Cotangent on the final normed hidden state for one target: the gradient of its logit
    /// (the lm_head row of the token), of its log-probability (that row minus the
    /// probability-weighted mean row), or of its negative log-likelihood.
    pub fn seed(&self, model: &Transformer, row: usize, id: u32, target: Target) -> Result<Tensor> {
        let e = model.lm_head_weight();
        let ey = e
            .get(id as usize)
            .context("token id outside the vocabulary")?;
        Ok(match target {
            Target::Logit => ey,
            Target::Logprob | Target::Nll => {
                let z = self.logits.get(
                    row.checked_sub(self.logits_start)
                        .context("no logits for this row")?,
                )?;
                let p = candle_nn::ops::softmax(&z, D::Minus1)?;
                let mean = p.unsqueeze(0)?.matmul(e)?.squeeze(0)?;
                let g = (ey - mean)?;
                if target == Target::Nll {
                    g.neg()?
                } else {
                    g
                }
            }
        })
    }
}

/// Which scalar's gradient is measured (docs/method.md section 2; default: the raw logit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Logit,
    Logprob,
    Nll,
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use egi_model::backprop::Pass;
    use egi_model::testing::tiny_random;
    use egi_model::{Arch, AttnInput};

    /// The fused attention backward (f32 kernel) against the per-target candle ops, on a
    /// recorded tape and on one read out of a packed pass (masked entries in the probs), for
    /// targets with different prefixes; Qwen3 covers the per-head q/k norms.
    #[test]
    fn fused_attention_backward_matches_candle_ops() {
        let max_abs =
            |t: &Tensor| -> f32 { t.abs().unwrap().max_all().unwrap().to_scalar().unwrap() };
        for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
            let m = tiny_random(arch, DType::F32, 5).unwrap();
            let cfg = &m.cfg;
            let ids: Vec<u32> = (0..11).map(|i| (i * 7 + 3) % 50).collect();
            let own = Tape::record(&m, &ids).unwrap();
            // Prompt of 4 + responses of 3 and 4: the tape of the second response.
            let attn = AttnInput::packed(4, &[3, 4], DType::F32, &Device::Cpu).unwrap();
            let pass = Pass::record(&m, &ids, &attn).unwrap();
            let rows: Vec<u32> = (0..4).chain(7..11).collect();
            let packed = Tape::from_pass(&m, &pass, &rows, 3).unwrap();
            for tape in [&own, &packed] {
                let lens = [3usize, tape.len, 2];
                let offs = fastops::prefix_offsets(&lens);
                let n_all: usize = lens.iter().sum();
                let dctx = Tensor::randn(
                    0f32,
                    1.0,
                    (n_all, cfg.num_heads * cfg.head_dim),
                    &Device::Cpu,
                )
                .unwrap();
                for l in 0..cfg.num_layers {
                    let (fq, fk, fv) = tape.attention_bwd_all(&m, l, &dctx, &lens, &offs).unwrap();
                    for (k, (&n, &at)) in lens.iter().zip(&offs).enumerate() {
                        let (cq, ck, cv) = tape
                            .attention_bwd(&m, l, &dctx.narrow(0, at, n).unwrap())
                            .unwrap();
                        for (name, f, c) in [("q", &fq, cq), ("k", &fk, ck), ("v", &fv, cv)] {
                            let f = f.narrow(0, at, n).unwrap();
                            let err = max_abs(&(&f - &c).unwrap());
                            let size = max_abs(&c);
                            assert!(
                                size > 0.0,
                                "{arch:?} layer {l} target {k} d{name} is all zero"
                            );
                            assert!(
                                err <= 1e-5 * size.max(1.0),
                                "{arch:?} layer {l} target {k} d{name}: {err} (size {size})"
                            );
                        }
                    }
                }
            }
        }
    }
}
