//! Fused f32 CPU kernels for the elementwise steps of the training pass ([`crate::pass`]):
//! RMSNorm, SiLU-gated products, masked softmax, and their backward steps, each one pass
//! over its rows instead of several candle ops (each a full pass, an allocation and, for
//! `exp`, a scalar libm call). Measured on the default model: these steps took about a third
//! of the training pass, the matmuls the rest.
//!
//! Written by hand because no crate offers these fusions on candle tensors. Each function
//! returns `None` when its inputs are not contiguous f32 on the CPU; the caller then runs the
//! same formula with candle ops (f64 tests, other devices). Tests below check every kernel
//! against those candle formulas.

use anyhow::Result;
use candle_core::Tensor;
use rayon::prelude::*;

use crate::view::f32s;

/// Run the block compiled for AVX-512 when the CPU has it (the compiler then vectorises its
/// loops 16 wide), else as is.
macro_rules! simd {
    ($body:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                #[target_feature(enable = "avx512f")]
                unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
                    f()
                }
                // SAFETY: the CPU supports the feature the closure is compiled for.
                unsafe { wide(|| $body) }
            } else {
                $body
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $body
        }
    }};
}

/// exp(x) in f32 (Cephes' expf: range reduction by ln 2 and a degree-6 polynomial, about
/// 1 ulp), written so that loops over it vectorise. Below -87.3 it returns 0, as a masked
/// softmax entry must be; above 88 it saturates at exp(88) (softmax inputs are <= 0).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    let xc = x.clamp(-87.3, 88.0);
    let n = (xc * LOG2E + 0.5).floor();
    let r = xc - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < -87.3 {
        0.0
    } else {
        y * scale
    }
}

/// Sum with 16 independent accumulators: a plain fold is a serial chain the compiler may not
/// reorder, so it would not vectorise.
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut it = x.chunks_exact(16);
    for c in &mut it {
        for k in 0..16 {
            acc[k] += c[k];
        }
    }
    acc.iter().sum::<f32>() + it.remainder().iter().sum::<f32>()
}

#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let mut it = x.chunks_exact(16);
    for c in &mut it {
        for k in 0..16 {
            acc[k] = acc[k].max(c[k]);
        }
    }
    it.remainder()
        .iter()
        .chain(&acc)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
}

/// out[i] = exp((x[i] - shift) * scale) for one row (e.g. a row of logits when sampling),
/// returning the sum of out in f64 (partial sums of 1024 in f32).
pub fn exp_row(x: &[f32], shift: f32, scale: f32, out: &mut [f32]) -> f64 {
    simd!({
        for (o, &v) in out.iter_mut().zip(x) {
            *o = exp((v - shift) * scale);
        }
        out.chunks(1024).map(|c| sum(c) as f64).sum()
    })
}

/// Largest element of a row (NEG_INFINITY when empty).
pub fn row_max(x: &[f32]) -> f32 {
    simd!(max(x))
}

/// Rows of `width` elements, in parallel chunks of whole rows.
const ROWS_PER_TASK: usize = 16;

/// RMSNorm forward: y = x r w with r = 1 / sqrt(mean(x^2) + eps), over rows of x [.., n].
/// Returns (y, r) with r shaped [.., 1].
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Option<(Tensor, Tensor)>> {
    let (Some(xv), Some(wv)) = (f32s(x), f32s(w)) else {
        return Ok(None);
    };
    let xv: &[f32] = &xv;
    let wv: &[f32] = &wv;
    let n = wv.len();
    let rows = xv.len() / n;
    let mut y = vec![0f32; xv.len()];
    let mut r = vec![0f32; rows];
    let eps = eps as f32;
    y.par_chunks_mut(n * ROWS_PER_TASK)
        .zip(r.par_chunks_mut(ROWS_PER_TASK))
        .zip(xv.par_chunks(n * ROWS_PER_TASK))
        .for_each(|((y, r), x)| {
            simd!({
                for ((yr, rr), xr) in y.chunks_mut(n).zip(r.iter_mut()).zip(x.chunks(n)) {
                    let ss = dot(xr, xr);
                    let f = 1.0 / (ss / n as f32 + eps).sqrt();
                    *rr = f;
                    for ((o, &a), &g) in yr.iter_mut().zip(xr).zip(wv) {
                        *o = a * f * g;
                    }
                }
            })
        });
    let mut rshape = x.dims().to_vec();
    *rshape.last_mut().unwrap() = 1;
    Ok(Some((
        Tensor::from_vec(y, x.shape(), x.device())?,
        Tensor::from_vec(r, rshape, x.device())?,
    )))
}

/// RMSNorm backward from dy: dx = r g - x r^3 mean(x g) with g = dy w, and the weight
/// gradient sum over rows of dy x r (when `want_w`). `dy` may stack several cotangents of
/// the same x ([K, .., n] against [.., n]: its row i belongs to x's row i mod rows(x)); dx
/// then has dy's shape.
pub fn rms_norm_bwd(
    x: &Tensor,
    r: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    want_w: bool,
) -> Result<Option<(Tensor, Option<Tensor>)>> {
    let (Some(xv), Some(rv), Some(wv), Some(dyv)) = (f32s(x), f32s(r), f32s(w), f32s(dy)) else {
        return Ok(None);
    };
    let (xv, rv, wv, dyv): (&[f32], &[f32], &[f32], &[f32]) = (&xv, &rv, &wv, &dyv);
    let n = wv.len();
    let xrows = xv.len() / n;
    if xrows == 0 || dyv.len() % xv.len() != 0 || rv.len() != xrows {
        return Ok(None);
    }
    let mut dx = vec![0f32; dyv.len()];
    let parts: Vec<Vec<f32>> = dx
        .par_chunks_mut(n * ROWS_PER_TASK)
        .zip(dyv.par_chunks(n * ROWS_PER_TASK))
        .enumerate()
        .map(|(c, (dx, dy))| {
            simd!({
                let mut dw = if want_w { vec![0f32; n] } else { vec![] };
                for (k, (dxr, dyr)) in dx.chunks_mut(n).zip(dy.chunks(n)).enumerate() {
                    let i = (c * ROWS_PER_TASK + k) % xrows;
                    let (xr, f) = (&xv[i * n..(i + 1) * n], rv[i]);
                    for ((o, &d), &g) in dxr.iter_mut().zip(dyr).zip(wv) {
                        *o = d * g;
                    }
                    let xg = dot(xr, dxr);
                    let cst = f * f * f * xg / n as f32;
                    for (((o, &a), &d), &g) in dxr.iter_mut().zip(xr).zip(dyr).zip(wv) {
                        *o = f * d * g - a * cst;
                    }
                    if want_w {
                        for ((o, &a), &d) in dw.iter_mut().zip(xr).zip(dyr) {
                            *o += d * a * f;
                        }
                    }
                }
                dw
            })
        })
        .collect();
    let dw = if want_w {
        let mut s = vec![0f32; n];
        for p in &parts {
            for (a, b) in s.iter_mut().zip(p) {
                *a += b;
            }
        }
        Some(Tensor::from_vec(s, n, x.device())?)
    } else {
        None
    };
    Ok(Some((Tensor::from_vec(dx, dy.shape(), x.device())?, dw)))
}

/// out = silu(g) u over plain slices (the decode path's few rows), vectorised.
pub fn silu_mul_into(g: &[f32], u: &[f32], out: &mut [f32]) {
    simd!({
        for ((o, &a), &b) in out.iter_mut().zip(g).zip(u) {
            *o = a / (1.0 + exp(-a)) * b;
        }
    })
}

/// silu(g) u elementwise.
pub fn silu_mul(g: &Tensor, u: &Tensor) -> Result<Option<Tensor>> {
    let (Some(gv), Some(uv)) = (f32s(g), f32s(u)) else {
        return Ok(None);
    };
    let gv: &[f32] = &gv;
    let uv: &[f32] = &uv;
    let mut y = vec![0f32; gv.len()];
    const CH: usize = 1 << 13;
    y.par_chunks_mut(CH)
        .zip(gv.par_chunks(CH))
        .zip(uv.par_chunks(CH))
        .for_each(|((y, g), u)| {
            simd!({
                for ((o, &a), &b) in y.iter_mut().zip(g).zip(u) {
                    *o = a / (1.0 + exp(-a)) * b;
                }
            })
        });
    Ok(Some(Tensor::from_vec(y, g.shape(), g.device())?))
}

/// Backward of y = silu(g) u from dy: (dg, du) = (dy u s (1 + g (1 - s)), dy g s), s = sigmoid(g).
/// `dy` may stack several cotangents of the same g, u ([K, ..] against [..]).
pub fn silu_mul_bwd(g: &Tensor, u: &Tensor, dy: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
    let (Some(gv), Some(uv), Some(dv)) = (f32s(g), f32s(u), f32s(dy)) else {
        return Ok(None);
    };
    let (gv, uv, dv): (&[f32], &[f32], &[f32]) = (&gv, &uv, &dv);
    let n = gv.len();
    if n == 0 || uv.len() != n || dv.len() % n != 0 {
        return Ok(None);
    }
    let mut dg = vec![0f32; dv.len()];
    let mut du = vec![0f32; dv.len()];
    // Chunks that never straddle two stacked cotangents.
    let ch = (1usize << 13).min(n);
    let per = n.div_ceil(ch);
    let tasks: Vec<(usize, usize)> = (0..dv.len() / n)
        .flat_map(|k| (0..per).map(move |c| (k * n + c * ch, (n - c * ch).min(ch))))
        .collect();
    let outs: Vec<(Vec<f32>, Vec<f32>)> = tasks
        .par_iter()
        .map(|&(at, len)| {
            let off = at % n;
            let (g, u, d) = (&gv[off..off + len], &uv[off..off + len], &dv[at..at + len]);
            let (mut og, mut ou) = (vec![0f32; len], vec![0f32; len]);
            simd!({
                for ((((xg, xu), &a), &b), &c) in
                    og.iter_mut().zip(ou.iter_mut()).zip(g).zip(u).zip(d)
                {
                    let s = 1.0 / (1.0 + exp(-a));
                    *xg = c * b * s * (1.0 + a * (1.0 - s));
                    *xu = c * a * s;
                }
            });
            (og, ou)
        })
        .collect();
    for (&(at, len), (og, ou)) in tasks.iter().zip(outs) {
        dg[at..at + len].copy_from_slice(&og);
        du[at..at + len].copy_from_slice(&ou);
    }
    Ok(Some((
        Tensor::from_vec(dg, dy.shape(), g.device())?,
        Tensor::from_vec(du, dy.shape(), g.device())?,
    )))
}

/// Softmax over the last dimension of `scores * scale + mask`, where scores is
/// [.., rows, t] and mask [rows', t] repeats every rows' rows (the mask of one head, shared
/// by all heads).
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Option<Tensor>> {
    let (Some(sv), Some(mv)) = (f32s(scores), f32s(mask)) else {
        return Ok(None);
    };
    let sv: &[f32] = &sv;
    let mv: &[f32] = &mv;
    let t = scores.dim(candle_core::D::Minus1)?;
    let mrows = mv.len() / t;
    let scale = scale as f32;
    let mut p = vec![0f32; sv.len()];
    p.par_chunks_mut(t * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(c, rows)| {
            simd!({
                for (k, row) in rows.chunks_mut(t).enumerate() {
                    let i = c * ROWS_PER_TASK + k;
                    let s = &sv[i * t..(i + 1) * t];
                    let m = &mv[(i % mrows) * t..(i % mrows + 1) * t];
                    for ((o, &a), &b) in row.iter_mut().zip(s).zip(m) {
                        *o = a * scale + b;
                    }
                    let mx = max(row);
                    for o in row.iter_mut() {
                        *o = exp(*o - mx);
                    }
                    let inv = 1.0 / sum(row);
                    for o in row.iter_mut() {
                        *o *= inv;
                    }
                }
            })
        });
    Ok(Some(Tensor::from_vec(p, scores.shape(), scores.device())?))
}

/// Backward of softmax (then of the `scale` applied before it): dS = scale P (dP - sum(dP P)).
/// `dp` may stack several cotangents of the same P ([K, ..] against [..]).
pub fn softmax_bwd(p: &Tensor, dp: &Tensor, scale: f64) -> Result<Option<Tensor>> {
    let (Some(pv), Some(dv)) = (f32s(p), f32s(dp)) else {
        return Ok(None);
    };
    let (pv, dv): (&[f32], &[f32]) = (&pv, &dv);
    let t = p.dim(candle_core::D::Minus1)?;
    let prows = pv.len() / t.max(1);
    if prows == 0 || dv.len() % pv.len() != 0 {
        return Ok(None);
    }
    let scale = scale as f32;
    let mut ds = vec![0f32; dv.len()];
    ds.par_chunks_mut(t * ROWS_PER_TASK)
        .zip(dv.par_chunks(t * ROWS_PER_TASK))
        .enumerate()
        .for_each(|(c, (o, d))| {
            simd!({
                for (k, (or, dr)) in o.chunks_mut(t).zip(d.chunks(t)).enumerate() {
                    let i = (c * ROWS_PER_TASK + k) % prows;
                    let pr = &pv[i * t..(i + 1) * t];
                    let inner = dot(pr, dr);
                    for ((x, &a), &b) in or.iter_mut().zip(pr).zip(dr) {
                        *x = scale * a * (b - inner);
                    }
                }
            })
        });
    Ok(Some(Tensor::from_vec(ds, dp.shape(), dp.device())?))
}

/// Per row of logits [m, V]: the softmax p (written over a copy of the logits), log p of
/// `targets[i]` and the entropy (nats), all from one max / sum-of-exp pass.
pub struct HeadRows {
    pub probs: Tensor,
    pub logp: Vec<f32>,
    pub entropy: Vec<f32>,
}

pub fn head_rows(logits: &Tensor, targets: &[u32]) -> Result<Option<HeadRows>> {
    let Some(zv) = f32s(logits) else {
        return Ok(None);
    };
    // The softmax is written over a copy of the logits.
    let mut zv = zv.to_vec();
    let (m, v) = logits.dims2()?;
    let mut logp = vec![0f32; m];
    let mut entropy = vec![0f32; m];
    zv.par_chunks_mut(v)
        .zip(logp.par_iter_mut().zip(entropy.par_iter_mut()))
        .zip(targets.par_iter())
        .for_each(|((z, (lp, ent)), &y)| {
            simd!({
                let mx = max(z);
                let zy = z[y as usize] - mx;
                // z - max, then e^(z - max) in a second buffer; sums of e and of e (z - max)
                // in f64 partial sums for large vocabularies.
                for x in z.iter_mut() {
                    *x -= mx;
                }
                let mut e = vec![0f32; z.len()];
                for (o, &x) in e.iter_mut().zip(z.iter()) {
                    *o = exp(x);
                }
                let (mut s, mut sz) = (0f64, 0f64);
                for (ce, cz) in e.chunks(1024).zip(z.chunks(1024)) {
                    s += sum(ce) as f64;
                    sz += dot(ce, cz) as f64;
                }
                let lse = s.ln(); // log sum exp(z - max)
                *lp = (zy as f64 - lse) as f32;
                // H = lse - E_p[z - max]
                *ent = (lse - sz / s) as f32;
                let inv = (1.0 / s) as f32;
                for (x, &v) in z.iter_mut().zip(&e) {
                    *x = v * inv;
                }
            })
        });
    Ok(Some(HeadRows {
        probs: Tensor::from_vec(zv, (m, v), logits.device())?,
        logp,
        entropy,
    }))
}

/// The logits' cotangent of a loss on log p(target): with c = dL/d log p, row i of
/// c_i (onehot(targets[i]) - p_i), [m, V], in one pass over the kept softmax `p`.
pub fn head_dlogits(p: &Tensor, targets: &[u32], c: &[f32]) -> Result<Option<Tensor>> {
    let Some(pv) = f32s(p) else {
        return Ok(None);
    };
    let pv: &[f32] = &pv;
    let (_, v) = p.dims2()?;
    let mut out = vec![0f32; pv.len()];
    out.par_chunks_mut(v)
        .zip(pv.par_chunks(v))
        .zip(targets.par_iter().zip(c.par_iter()))
        .for_each(|((o, p), (&y, &c))| {
            simd!({
                for (x, &q) in o.iter_mut().zip(p) {
                    *x = -c * q;
                }
            });
            o[y as usize] += c;
        });
    Ok(Some(Tensor::from_vec(out, p.shape(), p.device())?))
}

/// Rotary embedding of `x` [T, n, hd] (rows of heads, as the q/k projections give them) with
/// `cos`, `sin` [T, hd] (halves repeated), written head-major: [n, T, hd]. One pass instead
/// of a transpose copy, the half rotation's narrow/neg/cat and three broadcast ops; the same
/// products and sum in the same order, so bit-identical to `x cos + rotate_half(x) sin`.
pub fn rope_heads(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Option<Tensor>> {
    let (t, n, hd) = x.dims3()?;
    let (Some(xv), Some(cv), Some(sv)) = (f32s(x), f32s(cos), f32s(sin)) else {
        return Ok(None);
    };
    if cos.dims() != [t, hd] || sin.dims() != [t, hd] || hd % 2 != 0 {
        return Ok(None);
    }
    let (xv, cv, sv): (&[f32], &[f32], &[f32]) = (&xv, &cv, &sv);
    let h = hd / 2;
    let mut y = vec![0f32; t * n * hd];
    y.par_chunks_mut(t * hd)
        .enumerate()
        .for_each(|(head, out)| {
            simd!({
                for (i, o) in out.chunks_exact_mut(hd).enumerate() {
                    let xr = &xv[(i * n + head) * hd..(i * n + head + 1) * hd];
                    let (c, s) = (&cv[i * hd..(i + 1) * hd], &sv[i * hd..(i + 1) * hd]);
                    for j in 0..h {
                        o[j] = xr[j] * c[j] + (-xr[j + h]) * s[j];
                    }
                    for j in h..hd {
                        o[j] = xr[j] * c[j] + xr[j - h] * s[j];
                    }
                }
            })
        });
    Ok(Some(Tensor::from_vec(y, (n, t, hd), x.device())?))
}

/// Backward of [`rope_heads`]: from `dy` [n, T, hd] to dx [T, n, hd] (contiguous), as
/// `dy cos - rotate_half(dy sin)` computes it, bit for bit.
pub fn rope_heads_bwd(dy: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Option<Tensor>> {
    let (n, t, hd) = dy.dims3()?;
    let (Some(dv), Some(cv), Some(sv)) = (f32s(dy), f32s(cos), f32s(sin)) else {
        return Ok(None);
    };
    if cos.dims() != [t, hd] || sin.dims() != [t, hd] || hd % 2 != 0 {
        return Ok(None);
    }
    let (dv, cv, sv): (&[f32], &[f32], &[f32]) = (&dv, &cv, &sv);
    let h = hd / 2;
    let mut y = vec![0f32; t * n * hd];
    y.par_chunks_mut(n * hd).enumerate().for_each(|(i, out)| {
        simd!({
            let (c, s) = (&cv[i * hd..(i + 1) * hd], &sv[i * hd..(i + 1) * hd]);
            for (head, o) in out.chunks_exact_mut(hd).enumerate() {
                let d = &dv[(head * t + i) * hd..(head * t + i + 1) * hd];
                for j in 0..h {
                    o[j] = d[j] * c[j] - (-(d[j + h] * s[j + h]));
                }
                for j in h..hd {
                    o[j] = d[j] * c[j] - d[j - h] * s[j - h];
                }
            }
        })
    });
    Ok(Some(Tensor::from_vec(y, (t, n, hd), dy.device())?))
}

/// Mask entries at or below this are "cannot see" (the model's masks use -1e30).
const MASKED: f32 = -1e29;

/// Softmax attention of the training pass, fused: from `qr` [nh, T, hd] and `kr`, `v`
/// [nkv, T, hd] (heads grouped, rope applied) and the additive `mask` [T, T] (one row, e.g.
/// a packed group: each response sees the prompt and itself), returns the weights
/// P [nh, T, T] (exactly 0 where masked) and ctx = P v as [T, nh*hd].
///
/// Scores are computed only where the mask lets a query see a key: in a packed group of a
/// prompt and four responses that is under a third of the T x T matrix that candle's batched
/// matmuls, softmax and copies go through. Keys are read transposed ([hd, T] per kv head) so
/// that a query's scores over a run of visible keys are 16-wide fused multiply-adds with no
/// horizontal sums. `None` when the inputs are not f32 on the CPU, or when some query sees
/// no key (the caller's formula then gives its uniform row).
pub fn attention_fwd(
    qr: &Tensor,
    kr: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f64,
) -> Result<Option<(Tensor, Tensor)>> {
    let (nh, t, hd) = qr.dims3()?;
    let nkv = kr.dim(0)?;
    if kr.dims() != [nkv, t, hd] || v.dims() != [nkv, t, hd] || mask.dims() != [t, t] {
        return Ok(None);
    }
    if nkv == 0 || nh % nkv != 0 {
        return Ok(None);
    }
    let (Some(qv), Some(kv), Some(vv), Some(mv)) = (f32s(qr), f32s(kr), f32s(v), f32s(mask)) else {
        return Ok(None);
    };
    let (qv, kv, vv, mv): (&[f32], &[f32], &[f32], &[f32]) = (&qv, &kv, &vv, &mv);
    // Visible runs [a, b) of each query row.
    let mut runs: Vec<Vec<(usize, usize)>> = Vec::with_capacity(t);
    for i in 0..t {
        let row = &mv[i * t..(i + 1) * t];
        let mut r = vec![];
        let mut j = 0;
        while j < t {
            if row[j] > MASKED {
                let a = j;
                while j < t && row[j] > MASKED {
                    j += 1;
                }
                r.push((a, j));
            } else {
                j += 1;
            }
        }
        if r.is_empty() {
            return Ok(None);
        }
        runs.push(r);
    }
    // k transposed per kv head, rows zero-padded to whole blocks: kt[g][d][j], j < tp.
    const B: usize = 64;
    let tp = t.div_ceil(B) * B;
    let mut kt = vec![0f32; nkv * hd * tp];
    for g in 0..nkv {
        for j in 0..t {
            for d in 0..hd {
                kt[(g * hd + d) * tp + j] = kv[(g * t + j) * hd + d];
            }
        }
    }
    let n_rep = nh / nkv;
    let scale = scale as f32;
    let mut probs = vec![0f32; nh * t * t];
    let mut ctx3 = vec![0f32; nh * t * hd]; // [nh, T, hd]
    probs
        .par_chunks_mut(t * ROWS_PER_TASK)
        .zip(ctx3.par_chunks_mut(hd * ROWS_PER_TASK))
        .enumerate()
        .for_each_init(
            || vec![0f32; tp],
            |sc, (c, (pc, cc))| {
                simd!({
                    for (k, (prow, crow)) in pc.chunks_mut(t).zip(cc.chunks_mut(hd)).enumerate() {
                        let r = c * ROWS_PER_TASK + k;
                        let (head, i) = (r / t, r % t);
                        let g = head / n_rep;
                        let q = &qv[(head * t + i) * hd..(head * t + i + 1) * hd];
                        let m = &mv[i * t..(i + 1) * t];
                        let kg = &kt[g * hd * tp..(g + 1) * hd * tp];
                        // Scores of the whole blocks of B keys that hold visible keys: B
                        // accumulators that stay in registers over the head dimension (masked
                        // keys inside such a block are computed and ignored).
                        let mut next = 0; // first block not yet computed
                        let blocks = runs[i].iter().flat_map(|&(a, b)| a / B..b.div_ceil(B));
                        for blk in blocks {
                            if blk < next {
                                continue;
                            }
                            next = blk + 1;
                            let j0 = blk * B;
                            let mut acc = [0f32; B];
                            for (d, &qd) in q.iter().enumerate() {
                                let kd = &kg[d * tp + j0..d * tp + j0 + B];
                                for l in 0..B {
                                    acc[l] += qd * kd[l];
                                }
                            }
                            sc[j0..j0 + B].copy_from_slice(&acc);
                        }
                        let mut mx = f32::NEG_INFINITY;
                        for &(a, b) in &runs[i] {
                            let s = &mut prow[a..b];
                            for ((x, &y), &z) in s.iter_mut().zip(&m[a..b]).zip(&sc[a..b]) {
                                *x = z * scale + y;
                            }
                            mx = mx.max(max(s));
                        }
                        let mut total = 0f32;
                        for &(a, b) in &runs[i] {
                            let s = &mut prow[a..b];
                            for x in s.iter_mut() {
                                *x = exp(*x - mx);
                            }
                            total += sum(s);
                        }
                        let inv = 1.0 / total;
                        let vg = &vv[g * t * hd..(g + 1) * t * hd];
                        for &(a, b) in &runs[i] {
                            for j in a..b {
                                let p = prow[j] * inv;
                                prow[j] = p;
                                let vr = &vg[j * hd..(j + 1) * hd];
                                for (o, &x) in crow.iter_mut().zip(vr) {
                                    *o += p * x;
                                }
                            }
                        }
                    }
                })
            },
        );
    // [nh, T, hd] -> [T, nh*hd]
    let mut ctx = vec![0f32; t * nh * hd];
    ctx.par_chunks_mut(nh * hd)
        .enumerate()
        .for_each(|(i, row)| {
            for head in 0..nh {
                row[head * hd..(head + 1) * hd]
                    .copy_from_slice(&ctx3[(head * t + i) * hd..(head * t + i + 1) * hd]);
            }
        });
    let dev = qr.device();
    Ok(Some((
        Tensor::from_vec(probs, (nh, t, t), dev)?,
        Tensor::from_vec(ctx, (t, nh * hd), dev)?,
    )))
}

/// Where each of several row blocks starts when they are stacked one after another:
/// lens[0] + ... + lens[k-1] for block k.
pub fn prefix_offsets(lens: &[usize]) -> Vec<usize> {
    lens.iter()
        .scan(0, |at, &n| {
            *at += n;
            Some(*at - n)
        })
        .collect()
}

/// Attention's backward, fused, for K cotangents each over its own causal prefix (the
/// probe's step targets). Shapes: `probs`
/// [nh, T, T] (zero where masked, and above the diagonal as in every causal decoder: the
/// kernel reads only j <= i), `qr` [nh, T, hd] and `kr` [nkv, T, hd] after rope, `v`
/// [nkv, T, hd]; `dctx` [N, nh*hd] holds target k's rows at lens[0] + ... + lens[k-1];
/// `cos`/`sin` [T, hd] are the rope tables of rows 0..T. Returns dq [N, nh*hd],
/// dk [N, nkv*hd], dv [N, nkv*hd]: the cotangents on q and k before rope (rope's backward
/// applied) and on v. Replaces about 25 candle ops per target and layer (reshapes,
/// copies, four batched matmuls, softmax backward, rope) with one pass that also skips the
/// masked half of each score matrix. One task per (target, head). The training pass
/// ([`crate::pass`]) uses it too, with one target over the whole row.
#[allow(clippy::too_many_arguments)]
pub fn attention_bwd(
    probs: &Tensor,
    qr: &Tensor,
    kr: &Tensor,
    v: &Tensor,
    dctx: &Tensor,
    lens: &[usize],
    cos: &Tensor,
    sin: &Tensor,
    scale: f64,
) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    let (Some(pv), Some(qv), Some(kv), Some(vv), Some(dv), Some(cv), Some(sv)) = (
        f32s(probs),
        f32s(qr),
        f32s(kr),
        f32s(v),
        f32s(dctx),
        f32s(cos),
        f32s(sin),
    ) else {
        return Ok(None);
    };
    let (pv, qv, kv, vv): (&[f32], &[f32], &[f32], &[f32]) = (&pv, &qv, &kv, &vv);
    let (dv, cv, sv): (&[f32], &[f32], &[f32]) = (&dv, &cv, &sv);
    let (nh, t, t2) = probs.dims3()?;
    let hd = qr.dim(candle_core::D::Minus1)?;
    let nkv = kr.dim(0)?;
    let n_all: usize = lens.iter().sum();
    if t != t2
        || nkv == 0
        || nh % nkv != 0
        || hd % 2 != 0
        || qv.len() != nh * t * hd
        || kv.len() != nkv * t * hd
        || vv.len() != kv.len()
        || dv.len() != n_all * nh * hd
        || cv.len() < t * hd
        || sv.len() < t * hd
        || lens.iter().any(|&n| n > t)
    {
        return Ok(None);
    }
    let n_rep = nh / nkv;
    let scale = scale as f32;
    let offs = prefix_offsets(lens);
    // rope's backward of one row: dx = dy cos - rot(dy sin), rot(z) = [-z2, z1].
    let half = hd / 2;
    let rope_bwd = |dy: &[f32], i: usize, out: &mut [f32]| {
        let (c, s) = (&cv[i * hd..(i + 1) * hd], &sv[i * hd..(i + 1) * hd]);
        for d in 0..half {
            out[d] = dy[d] * c[d] + dy[d + half] * s[d + half];
            out[d + half] = dy[d + half] * c[d + half] - dy[d] * s[d];
        }
    };
    let tasks: Vec<(usize, usize)> = (0..lens.len())
        .flat_map(|k| (0..nh).map(move |h| (k, h)))
        .collect();
    // Per task (target, head): its dq rows [n, hd] and its share of dk and dv [n, hd] (the
    // heads of a kv group are summed below).
    let outs: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = tasks
        .par_iter()
        .map(|&(k, h)| {
            simd!({
                let (n, at) = (lens[k], offs[k]);
                let g = h / n_rep;
                let mut dq = vec![0f32; n * hd];
                let mut dk = vec![0f32; n * hd];
                let mut dvh = vec![0f32; n * hd];
                let mut dp = vec![0f32; n];
                let kg = &kv[g * t * hd..];
                let vg = &vv[g * t * hd..];
                for i in 0..n {
                    let dc = &dv[(at + i) * nh * hd + h * hd..][..hd];
                    let prow = &pv[(h * t + i) * t..][..=i];
                    let mut inner = 0f32;
                    for (j, &p) in prow.iter().enumerate() {
                        dp[j] = if p == 0.0 {
                            0.0
                        } else {
                            dot(dc, &vg[j * hd..(j + 1) * hd])
                        };
                        inner += p * dp[j];
                    }
                    let qi = &qv[(h * t + i) * hd..][..hd];
                    let dqi = &mut dq[i * hd..(i + 1) * hd];
                    for (j, &p) in prow.iter().enumerate() {
                        if p == 0.0 {
                            continue; // masked: no score, no value read
                        }
                        let ds = scale * p * (dp[j] - inner);
                        let kj = &kg[j * hd..(j + 1) * hd];
                        for (o, &x) in dqi.iter_mut().zip(kj) {
                            *o += ds * x;
                        }
                        for (o, &x) in dk[j * hd..(j + 1) * hd].iter_mut().zip(qi) {
                            *o += ds * x;
                        }
                        for (o, &x) in dvh[j * hd..(j + 1) * hd].iter_mut().zip(dc) {
                            *o += p * x;
                        }
                    }
                }
                (dq, dk, dvh)
            })
        })
        .collect();
    let mut dq = vec![0f32; n_all * nh * hd];
    let mut dkr = vec![0f32; n_all * nkv * hd];
    let mut dvo = vec![0f32; n_all * nkv * hd];
    for (&(k, h), (q, kk, vh)) in tasks.iter().zip(&outs) {
        let (n, at) = (lens[k], offs[k]);
        let g = h / n_rep;
        for i in 0..n {
            let o = (at + i) * nh * hd + h * hd;
            rope_bwd(&q[i * hd..(i + 1) * hd], i, &mut dq[o..o + hd]);
            let o = (at + i) * nkv * hd + g * hd;
            for (d, (&a, &b)) in kk[i * hd..(i + 1) * hd]
                .iter()
                .zip(&vh[i * hd..(i + 1) * hd])
                .enumerate()
            {
                dkr[o + d] += a;
                dvo[o + d] += b;
            }
        }
    }
    // rope's backward on the summed dk rows.
    let mut dk = vec![0f32; n_all * nkv * hd];
    for (&n, &at) in lens.iter().zip(&offs) {
        for i in 0..n {
            for g in 0..nkv {
                let o = (at + i) * nkv * hd + g * hd;
                rope_bwd(&dkr[o..o + hd], i, &mut dk[o..o + hd]);
            }
        }
    }
    let dev = dctx.device();
    Ok(Some((
        Tensor::from_vec(dq, (n_all, nh * hd), dev)?,
        Tensor::from_vec(dk, (n_all, nkv * hd), dev)?,
        Tensor::from_vec(dvo, (n_all, nkv * hd), dev)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, D};

    fn rnd(shape: &[usize], seed: u64, spread: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * spread
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn maxdiff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The fused attention forward against the candle formula it replaces (batched matmuls,
    /// masked softmax, matmul with v), on a packed mask (a prompt, then blocks that each see
    /// the prompt and themselves, one of them empty) and on a plain causal one.
    #[test]
    fn attention_fwd_matches_candle_formula() {
        use crate::model::AttnInput;
        let (nh, nkv, hd) = (6, 2, 16);
        let n_rep = nh / nkv;
        for (prefix, blocks) in [(4usize, vec![5usize, 0, 7]), (9, vec![])] {
            let t = prefix + blocks.iter().sum::<usize>();
            let attn = AttnInput::packed(prefix, &blocks, DType::F32, &Device::Cpu).unwrap();
            let mask = attn.mask.reshape((t, t)).unwrap();
            let qr = rnd(&[nh, t, hd], 5, 1.5);
            let kr = rnd(&[nkv, t, hd], 6, 1.5);
            let v = rnd(&[nkv, t, hd], 7, 1.0);
            let scale = 1.0 / (hd as f64).sqrt();
            let qg = qr.reshape((nkv, n_rep * t, hd)).unwrap();
            let raw = qg
                .matmul(&kr.t().unwrap())
                .unwrap()
                .reshape((nh, t, t))
                .unwrap();
            let want_p = candle_nn::ops::softmax_last_dim(
                &(raw * scale).unwrap().broadcast_add(&mask).unwrap(),
            )
            .unwrap();
            let want_ctx = want_p
                .reshape((nkv, n_rep * t, t))
                .unwrap()
                .matmul(&v)
                .unwrap()
                .reshape((nh, t, hd))
                .unwrap()
                .transpose(0, 1)
                .unwrap()
                .reshape((t, nh * hd))
                .unwrap();
            let (p, ctx) = attention_fwd(&qr, &kr, &v, &mask, scale).unwrap().unwrap();
            assert!(
                maxdiff(&p, &want_p) < 1e-6,
                "probs {}",
                maxdiff(&p, &want_p)
            );
            assert!(
                maxdiff(&ctx, &want_ctx) < 1e-5,
                "ctx {}",
                maxdiff(&ctx, &want_ctx)
            );
            // Masked weights are exactly zero (the backward skips them).
            let pm = p.to_vec3::<f32>().unwrap();
            let mv = mask.to_vec2::<f32>().unwrap();
            for row in &pm {
                for (i, r) in row.iter().enumerate() {
                    for (j, &x) in r.iter().enumerate() {
                        if mv[i][j] < -1e29 {
                            assert_eq!(x, 0.0);
                        }
                    }
                }
            }
            // The scale matters: without it the weights differ.
            let (p2, _) = attention_fwd(&qr, &kr, &v, &mask, 1.0).unwrap().unwrap();
            assert!(maxdiff(&p2, &want_p) > 1e-3);
        }
    }

    /// The fused rotary kernels give exactly (bit for bit) what the candle formulas give, so
    /// that switching the training pass to them changes no number.
    #[test]
    fn rope_heads_match_candle_formulas_exactly() {
        let (t, n, hd) = (7, 3, 8);
        let x = rnd(&[t, n, hd], 1, 2.0);
        let dy = rnd(&[n, t, hd], 2, 2.0);
        let half = |seed| rnd(&[t, hd / 2], seed, 1.0);
        let (c, s) = (half(3), half(4));
        let cos = Tensor::cat(&[&c, &c], D::Minus1).unwrap();
        let sin = Tensor::cat(&[&s, &s], D::Minus1).unwrap();
        let rot = |x: &Tensor| {
            let x1 = x.narrow(D::Minus1, 0, hd / 2).unwrap();
            let x2 = x.narrow(D::Minus1, hd / 2, hd / 2).unwrap();
            Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap()
        };
        let xt = x.transpose(0, 1).unwrap().contiguous().unwrap();
        let want =
            (xt.broadcast_mul(&cos).unwrap() + rot(&xt).broadcast_mul(&sin).unwrap()).unwrap();
        let got = rope_heads(&x, &cos, &sin).unwrap().unwrap();
        assert_eq!(got.dims(), [n, t, hd]);
        assert_eq!(maxdiff(&got, &want), 0.0);
        let want = (dy.broadcast_mul(&cos).unwrap() - rot(&dy.broadcast_mul(&sin).unwrap()))
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        let got = rope_heads_bwd(&dy, &cos, &sin).unwrap().unwrap();
        assert_eq!(got.dims(), [t, n, hd]);
        assert_eq!(maxdiff(&got, &want), 0.0);
        // The rotation matters: a kernel that skipped it would differ.
        assert!(
            maxdiff(
                &got,
                &dy.broadcast_mul(&cos).unwrap().transpose(0, 1).unwrap()
            ) > 0.1
        );
    }

    #[test]
    fn exp_matches_std() {
        let mut worst = 0f32;
        for i in -8700..8800 {
            let x = i as f32 * 0.01 + 0.003;
            let (a, b) = (exp(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(-100.0), 0.0);
    }

    #[test]
    fn exp_row_and_max_match_std() {
        let x: Vec<f32> = (0..3001)
            .map(|i| ((i * 37) % 1000) as f32 * 0.03 - 12.0)
            .collect();
        let mut out = vec![0f32; x.len()];
        let m = row_max(&x);
        assert_eq!(m, x.iter().cloned().fold(f32::NEG_INFINITY, f32::max));
        let s = exp_row(&x, m, 0.7, &mut out);
        let want: f64 = x.iter().map(|&v| ((v as f64 - m as f64) * 0.7).exp()).sum();
        assert!((s - want).abs() < 1e-6 * want, "{s} vs {want}");
        assert!((out[5] as f64 - ((x[5] - m) as f64 * 0.7).exp()).abs() < 1e-6);
    }

    #[test]
    fn rms_norm_matches_candle() -> Result<()> {
        let x = rnd(&[37, 40], 1, 2.0);
        let w = rnd(&[40], 2, 1.0);
        let dy = rnd(&[37, 40], 3, 1.0);
        let eps = 1e-5;
        let (y, r) = rms_norm(&x, &w, eps)?.unwrap();
        let r0 = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
        let y0 = x.broadcast_mul(&r0)?.broadcast_mul(&w)?;
        assert!(maxdiff(&y, &y0) < 1e-5 && maxdiff(&r, &r0) < 1e-5);
        let (dx, dw) = rms_norm_bwd(&x, &r, &w, &dy, true)?.unwrap();
        let g = dy.broadcast_mul(&w)?;
        let xg = (&g * &x)?.mean_keepdim(D::Minus1)?;
        let dx0 = (g.broadcast_mul(&r0)? - x.broadcast_mul(&(xg * r0.powf(3.0)?)?)?)?;
        let dw0 = (&dy * x.broadcast_mul(&r0)?)?.sum(0)?;
        assert!(maxdiff(&dx, &dx0) < 1e-5, "{}", maxdiff(&dx, &dx0));
        assert!(maxdiff(&dw.unwrap(), &dw0) < 1e-4);
        Ok(())
    }

    #[test]
    fn silu_mul_and_backward_match_candle() -> Result<()> {
        let g = rnd(&[33, 70], 4, 6.0);
        let u = rnd(&[33, 70], 5, 2.0);
        let dy = rnd(&[33, 70], 6, 1.0);
        let y = silu_mul(&g, &u)?.unwrap();
        assert!(maxdiff(&y, &(g.silu()? * &u)?) < 1e-5);
        let (dg, du) = silu_mul_bwd(&g, &u, &dy)?.unwrap();
        let s = candle_nn::ops::sigmoid(&g)?;
        let dsilu = (&s * ((&g * (1.0 - &s)?)? + 1.0)?)?;
        assert!(maxdiff(&dg, &(&dy * (&u * dsilu)?)?) < 1e-5);
        assert!(maxdiff(&du, &(&dy * g.silu()?)?) < 1e-5);
        Ok(())
    }

    #[test]
    fn masked_softmax_and_backward_match_candle() -> Result<()> {
        let (h, t) = (3, 21);
        let s = rnd(&[h, t, t], 7, 5.0);
        let mut mv = vec![0f32; t * t];
        for i in 0..t {
            for j in i + 1..t {
                mv[i * t + j] = -1e30;
            }
        }
        let mask = Tensor::from_vec(mv, (t, t), &Device::Cpu)?;
        let scale = 0.125;
        let p = masked_softmax(&s, &mask, scale)?.unwrap();
        let p0 = candle_nn::ops::softmax_last_dim(&(&s * scale)?.broadcast_add(&mask)?)?;
        assert!(maxdiff(&p, &p0) < 1e-6);
        // Masked entries are exactly zero, as with candle.
        assert_eq!(p.get(0)?.get(0)?.get(1)?.to_scalar::<f32>()?, 0.0);
        let dp = rnd(&[h, t, t], 8, 1.0);
        let ds = softmax_bwd(&p, &dp, scale)?.unwrap();
        let inner = (&dp * &p0)?.sum_keepdim(D::Minus1)?;
        let ds0 = ((dp.broadcast_sub(&inner)? * &p0)? * scale)?;
        assert!(maxdiff(&ds, &ds0) < 1e-6);
        Ok(())
    }

    /// Stacked cotangents ([K, ..] against the shared [..]) equal K separate calls.
    #[test]
    fn stacked_cotangents_equal_separate_calls() -> Result<()> {
        let (k, p, n) = (3, 7, 40);
        let x = rnd(&[p, n], 11, 2.0);
        let w = rnd(&[n], 12, 1.0);
        let (_, r) = rms_norm(&x, &w, 1e-6)?.unwrap();
        let dy = rnd(&[k, p, n], 13, 1.0);
        let (dx, _) = rms_norm_bwd(&x, &r, &w, &dy, false)?.unwrap();
        let g = rnd(&[p, 9000], 14, 4.0); // more than one chunk per cotangent
        let u = rnd(&[p, 9000], 15, 1.0);
        let da = rnd(&[k, p, 9000], 16, 1.0);
        let (dg, du) = silu_mul_bwd(&g, &u, &da)?.unwrap();
        let pr = candle_nn::ops::softmax_last_dim(&rnd(&[2, p, p], 17, 3.0))?;
        let dp = rnd(&[k, 2, p, p], 18, 1.0);
        let ds = softmax_bwd(&pr, &dp, 0.3)?.unwrap();
        for i in 0..k {
            let (one, _) = rms_norm_bwd(&x, &r, &w, &dy.get(i)?, false)?.unwrap();
            assert!(maxdiff(&dx.get(i)?, &one) == 0.0);
            let (a, b) = silu_mul_bwd(&g, &u, &da.get(i)?)?.unwrap();
            assert!(maxdiff(&dg.get(i)?, &a) == 0.0 && maxdiff(&du.get(i)?, &b) == 0.0);
            let one = softmax_bwd(&pr, &dp.get(i)?, 0.3)?.unwrap();
            assert!(maxdiff(&ds.get(i)?, &one) == 0.0);
        }
        Ok(())
    }

    #[test]
    fn head_rows_match_candle() -> Result<()> {
        let z = rnd(&[5, 3000], 9, 8.0);
        let tg = [0u32, 17, 2999, 1500, 3];
        let r = head_rows(&z, &tg)?.unwrap();
        let lsm = candle_nn::ops::log_softmax(&z, D::Minus1)?;
        let ent0: Vec<f32> = (lsm.exp()? * &lsm)?.sum(D::Minus1)?.neg()?.to_vec1()?;
        let lsm: Vec<Vec<f32>> = lsm.to_vec2()?;
        for i in 0..5 {
            assert!((r.logp[i] - lsm[i][tg[i] as usize]).abs() < 1e-5);
            assert!(
                (r.entropy[i] - ent0[i]).abs() < 1e-4,
                "{} {}",
                r.entropy[i],
                ent0[i]
            );
        }
        assert!(maxdiff(&r.probs, &candle_nn::ops::softmax_last_dim(&z)?) < 1e-6);
        Ok(())
    }

    #[test]
    fn head_dlogits_is_c_times_onehot_minus_p() -> Result<()> {
        let p = candle_nn::ops::softmax_last_dim(&rnd(&[3, 50], 10, 3.0))?;
        let tg = [4u32, 0, 49];
        let c = [0.5f32, -2.0, 1.5];
        let d = head_dlogits(&p, &tg, &c)?.unwrap();
        let pv: Vec<Vec<f32>> = p.to_vec2()?;
        let dv: Vec<Vec<f32>> = d.to_vec2()?;
        for i in 0..3 {
            for j in 0..50 {
                let want = c[i] * ((j == tg[i] as usize) as u8 as f32 - pv[i][j]);
                assert!((dv[i][j] - want).abs() < 1e-6);
            }
        }
        Ok(())
    }

    #[test]
    fn other_dtypes_fall_back() -> Result<()> {
        let x = rnd(&[4, 8], 1, 1.0).to_dtype(DType::F64)?;
        let w = rnd(&[8], 2, 1.0).to_dtype(DType::F64)?;
        assert!(rms_norm(&x, &w, 1e-6)?.is_none());
        assert!(silu_mul(&x, &x)?.is_none());
        Ok(())
    }
}
