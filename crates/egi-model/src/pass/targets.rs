//! [`Pass::backward_targets`]: the backward of K scalars at once over a recorded pass, each
//! over its own causal prefix, to the output gradients of the q/k/v/o projections (what the
//! fingerprint needs: G = D^T X per matrix, X being [`Pass::input_of`]). Autograd would
//! need a forward per target and would form weight gradients nobody reads.

use anyhow::Result;
use candle_core::{DType, Tensor, D};

use super::ops::{lin_bwd, packed_rows, rms_bwd, rope_heads_bwd};
use super::Pass;
use crate::fastops;
use crate::model::Transformer;

/// The four attention projections, in the order the fixtures use (q, k, v, o per layer).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
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

impl Pass {
    /// Backward of K scalars at once, each over its own causal prefix: `lens[k]` rows for
    /// target k, whose seeds `seeds[k]` are (row < lens[k], cotangent on the final normed
    /// hidden state [H]) pairs. Rows past a target's prefix get no cotangent from it, so they
    /// are skipped rather than carried as zeros. The K prefixes are packed one after another
    /// into N = sum(lens) rows: the row-wise parts (linear maps, norms, the MLP) run as one
    /// product over all targets, attention runs per target over its own prefix. For every
    /// layer (last first) `visit(layer, proj, D)` receives the packed output gradients
    /// D [N, out] of the projection; target k's rows start at lens[0] + ... + lens[k-1].
    pub fn backward_targets(
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
        let t = self.len();
        if let Some(&n) = lens.iter().find(|&&n| n == 0 || n > t) {
            anyhow::bail!("a prefix of {n} rows on a pass of {t} rows");
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
        let (mut dh, _) = rms_bwd(
            &packed(&self.h_last)?,
            &packed(&self.r_final)?,
            model.final_norm_weight(),
            &dhf,
            false,
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
            let (dx, _) = rms_bwd(
                &packed(&tp.h2)?,
                &packed(&tp.r_post)?,
                w.post_norm,
                &dm,
                false,
            )?;
            let dh2 = (&dh + dx)?;
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
            let (dx, _) = rms_bwd(
                &packed(&tp.h)?,
                &packed(&tp.r_in)?,
                w.input_norm,
                &da,
                false,
            )?;
            dh = (dh2 + dx)?;
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
        let t = self.len();
        let fused = fastops::attention_bwd(
            &tp.probs.reshape((nh, t, t))?,
            &tp.qr.reshape((nh, t, hd))?,
            &tp.kr,
            &tp.v,
            dctx,
            lens,
            &self.cos,
            &self.sin,
            scale,
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
                rms_bwd(&packed(x)?, &packed(r)?, wn, &d, false)?
                    .0
                    .reshape((n_all, nh * hd))?
            }
            _ => dq,
        };
        let dk = match (&tp.k_pre, w.k_norm) {
            (Some((x, r)), Some(wn)) => {
                let d = dk.reshape((n_all, nkv, hd))?;
                rms_bwd(&packed(x)?, &packed(r)?, wn, &d, false)?
                    .0
                    .reshape((n_all, nkv * hd))?
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
        let t = self.len();
        let probs = tp
            .probs
            .reshape((nh, t, t))?
            .narrow(1, 0, n)?
            .narrow(2, 0, n)?
            .contiguous()?; // [nh, n, n]
        let probs_g = probs.reshape((nkv, n_rep * n, n))?;
        let v = tp.v.narrow(1, 0, n)?.contiguous()?; // [nkv, n, hd]
        let kr = tp.kr.narrow(1, 0, n)?.contiguous()?;
        let qr_g = tp
            .qr
            .reshape((nh, t, hd))?
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
            (Some((x, r)), Some(wn)) => rms_bwd(&rows_of(x)?, &rows_of(r)?, wn, &dq, false)?.0,
            _ => dq,
        };
        let dk = match (&tp.k_pre, w.k_norm) {
            (Some((x, r)), Some(wn)) => rms_bwd(&rows_of(x)?, &rows_of(r)?, wn, &dk, false)?.0,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tiny_random;
    use crate::{Arch, AttnInput};
    use candle_core::Device;

    /// The fused attention backward (f32 kernel) against the per-target candle ops, on a
    /// pass of one sequence and on one read out of a packed pass (masked entries in the probs), for
    /// targets with different prefixes; Qwen3 covers the per-head q/k norms.
    #[test]
    fn fused_attention_backward_matches_candle_ops() {
        let max_abs =
            |t: &Tensor| -> f32 { t.abs().unwrap().max_all().unwrap().to_scalar().unwrap() };
        for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
            let m = tiny_random(arch, DType::F32, 5).unwrap();
            let cfg = &m.cfg;
            let ids: Vec<u32> = (0..11).map(|i| (i * 7 + 3) % 50).collect();
            let own = Pass::record_causal(&m, &ids).unwrap();
            // Prompt of 4 + responses of 3 and 4: the tape of the second response.
            let attn = AttnInput::packed(4, &[3, 4], DType::F32, &Device::Cpu).unwrap();
            let pass = Pass::record(&m, &ids, &attn).unwrap();
            let rows: Vec<u32> = (0..4).chain(7..11).collect();
            let packed = pass.select_rows(&m, &rows).unwrap();
            for tape in [&own, &packed] {
                let lens = [3usize, tape.len(), 2];
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
