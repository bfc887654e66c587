//! The LM head, in one place: per-token logit, log-probability and entropy, and their
//! backward, for every user (`score`, the fingerprint, the RL policy, SFT). Tied embeddings
//! are included: the head's weight is the embedding then.
//!
//! - [`token_stats`]: logit, log-prob and entropy in f64 over the full vocabulary (scoring
//!   and the fingerprint report these);
//! - [`logprobs`]: differentiable log-probs through candle's autograd (the reference path);
//! - [`HeadPass`]: the training path's head: log-probs and entropies without a graph, and the
//!   backward from dL/d log p to the hidden rows and the head's weight;
//! - [`seed`]: the cotangent a fingerprint target puts on the final hidden state.

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Tensor, D};

use super::Pass;
use crate::fastops;
use crate::model::Transformer;

/// One token's logit, log-probability and the entropy (nats) of the distribution that
/// predicted it, all in f64 over the full vocabulary at temperature 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenStats {
    pub logit: f64,
    pub logprob: f64,
    pub entropy: f64,
}

/// Entropy (nats) of each row's distribution from its log-softmax [n, V]: -sum p ln p.
fn entropy(lsm: &Tensor) -> Result<Tensor> {
    Ok((lsm.exp()? * lsm)?.sum(D::Minus1)?.neg()?)
}

/// [`TokenStats`] of `targets[i]` under logits row i of `z` [n, V].
pub fn token_stats(z: &Tensor, targets: &[u32]) -> Result<Vec<TokenStats>> {
    let n = targets.len();
    ensure!(
        z.dims2()?.0 == n,
        "{} rows of logits for {n} targets",
        z.dims2()?.0
    );
    let z = z.to_dtype(DType::F64)?;
    let lsm = candle_nn::ops::log_softmax(&z, D::Minus1)?;
    let ent: Vec<f64> = entropy(&lsm)?.to_vec1()?;
    let tgt = Tensor::from_slice(targets, n, z.device())?.unsqueeze(1)?;
    let lp: Vec<f64> = lsm.gather(&tgt, 1)?.squeeze(1)?.to_vec1()?;
    let lg: Vec<f64> = z.gather(&tgt, 1)?.squeeze(1)?.to_vec1()?;
    Ok((0..n)
        .map(|i| TokenStats {
            logit: lg[i],
            logprob: lp[i],
            entropy: ent[i],
        })
        .collect())
}

/// ln p(targets[i]) under hidden rows `h` [n, H], differentiable through candle's autograd,
/// and the entropies (nats, detached). The vocabulary projection runs `chunk` rows at a
/// time, so memory holds one chunk of logits.
pub fn logprobs(
    model: &Transformer,
    h: &Tensor,
    targets: &Tensor,
    chunk: usize,
) -> Result<(Tensor, Vec<f32>)> {
    let n = h.dim(0)?;
    let (mut parts, mut ent) = (vec![], Vec::with_capacity(n));
    for start in (0..n).step_by(chunk.max(1)) {
        let m = chunk.max(1).min(n - start);
        let logits = h
            .narrow(0, start, m)?
            .matmul(&model.lm_head_weight().t()?)?;
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        ent.extend(
            entropy(&lsm.detach())?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?,
        );
        parts.push(
            lsm.gather(&targets.narrow(0, start, m)?.unsqueeze(1)?, 1)?
                .squeeze(1)?,
        );
    }
    let logp = if parts.is_empty() {
        Tensor::zeros(0, model.dtype(), model.device())?
    } else {
        Tensor::cat(&parts, 0)?
    };
    Ok((logp, ent))
}

/// Largest head softmax (bytes) a [`HeadPass`] keeps for its backward: beyond it the
/// backward recomputes the logits (a matmul and a softmax per chunk) instead.
pub const PROBS_BUDGET: usize = 256 << 20;

/// The head over hidden rows without an autograd graph: log-probs and entropies, and the
/// softmax kept for the backward when it fits the budget.
pub struct HeadPass {
    /// ln p(target) per row [n] (model dtype) and the entropy (nats) at each row.
    pub logp: Tensor,
    pub ent: Vec<f32>,
    chunk: usize,
    probs: Option<Vec<Tensor>>,
}

impl HeadPass {
    /// The head over `h` [n, H] for `targets`, `chunk` rows of logits at a time, keeping the
    /// softmax when all of it fits in `probs_budget` bytes.
    pub fn forward(
        model: &Transformer,
        h: &Tensor,
        targets: &[u32],
        chunk: usize,
        probs_budget: usize,
    ) -> Result<Self> {
        let dev = model.device();
        let n = targets.len();
        let tgt = Tensor::from_slice(targets, n, dev)?;
        let e = model.lm_head_weight().detach();
        let (mut logp, mut ent) = (vec![], Vec::with_capacity(n));
        let chunk = chunk.max(1);
        let keep = n * e.dim(0)? * 4 <= probs_budget;
        let mut probs = vec![];
        for start in (0..n).step_by(chunk) {
            let m = chunk.min(n - start);
            let z = h.narrow(0, start, m)?.matmul(&e.t()?)?;
            if let Some(r) = fastops::head_rows(&z, &targets[start..start + m])? {
                ent.extend(r.entropy);
                logp.push(Tensor::from_vec(r.logp, m, dev)?);
                if keep {
                    probs.push(r.probs);
                }
                continue;
            }
            let lsm = candle_nn::ops::log_softmax(&z, D::Minus1)?;
            ent.extend(entropy(&lsm)?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
            let l = lsm.gather(&tgt.narrow(0, start, m)?.unsqueeze(1)?, 1)?;
            logp.push(l.squeeze(1)?);
        }
        let probs = (keep && probs.len() == n.div_ceil(chunk)).then_some(probs);
        let logp = if logp.is_empty() {
            Tensor::zeros(0, model.dtype(), dev)?
        } else {
            Tensor::cat(&logp, 0)?
        };
        Ok(HeadPass {
            logp,
            ent,
            chunk,
            probs,
        })
    }

    /// From c = dL/d log p [n, 1] to the cotangent on the hidden rows `h` [n, H] and, when
    /// `want_head`, the head weight's gradient: d logits = c (onehot - softmax), so the rows
    /// get c (E[y] - p E) and the head c (onehot - p)^T h.
    pub fn backward(
        &self,
        model: &Transformer,
        h: &Tensor,
        targets: &[u32],
        c: &Tensor,
        want_head: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let n = targets.len();
        let e = model.lm_head_weight().detach();
        let tgt = Tensor::from_slice(targets, n, model.device())?;
        let mut dh = vec![];
        let mut d_head: Option<Tensor> = None;
        for start in (0..n).step_by(self.chunk) {
            let m = self.chunk.min(n - start);
            let hc = h.narrow(0, start, m)?;
            let cc = c.narrow(0, start, m)?;
            let p = match &self.probs {
                Some(ps) => ps[start / self.chunk].clone(),
                None => candle_nn::ops::softmax_last_dim(&hc.matmul(&e.t()?)?)?,
            };
            let tg = tgt.narrow(0, start, m)?;
            let cv: Vec<f32> = cc.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
            let (dh_c, g) = match fastops::head_dlogits(&p, &targets[start..start + m], &cv)? {
                // d logits = c (onehot - p), [m, V]: one matmul for the rows and one for
                // the head.
                Some(dl) => (
                    dl.matmul(&e)?,
                    if want_head {
                        Some(dl.t()?.matmul(&hc)?)
                    } else {
                        None
                    },
                ),
                // Other dtypes: the same with candle ops, the one-hot part as row gathers.
                None => {
                    let neg = p.broadcast_mul(&cc)?.neg()?; // -c p, [m, V]
                    let ey = e.index_select(&tg, 0)?; // [m, H]
                    let dh_c = (neg.matmul(&e)? + ey.broadcast_mul(&cc)?)?;
                    let g = if want_head {
                        Some(
                            neg.t()?
                                .matmul(&hc)?
                                .index_add(&tg, &hc.broadcast_mul(&cc)?, 0)?,
                        )
                    } else {
                        None
                    };
                    (dh_c, g)
                }
            };
            dh.push(dh_c);
            if let Some(g) = g {
                d_head = Some(match d_head {
                    Some(x) => (x + g)?,
                    None => g,
                });
            }
        }
        let dh = if dh.is_empty() {
            h.zeros_like()?
        } else {
            Tensor::cat(&dh, 0)?
        };
        Ok((dh, d_head))
    }
}

/// Which scalar's gradient is measured (docs/method.md section 2; default: the raw logit).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Logit,
    Logprob,
    Nll,
}

impl Pass {
    /// Logits of rows `from..`, [T - from, V].
    pub fn logits(&self, model: &Transformer, from: usize) -> Result<Tensor> {
        let n = self.len();
        anyhow::ensure!(from < n, "no rows from {from} in a pass of {n}");
        let h = self.hidden.narrow(0, from, n - from)?;
        Ok(h.matmul(&model.lm_head_weight().t()?)?)
    }
}

/// Cotangent on the final normed hidden state for one target: the gradient of its logit
/// (the head's row of the token), of its log-probability (that row minus the
/// probability-weighted mean row), or of its negative log-likelihood. `logits` are the
/// predicting row's logits [V], needed by the last two only.
pub fn seed(
    model: &Transformer,
    logits: Option<&Tensor>,
    id: u32,
    target: Target,
) -> Result<Tensor> {
    let e = model.lm_head_weight();
    let ey = e
        .get(id as usize)
        .context("token id outside the vocabulary")?;
    Ok(match target {
        Target::Logit => ey,
        Target::Logprob | Target::Nll => {
            let z = logits.context("a log-probability target needs the row's logits")?;
            let p = candle_nn::ops::softmax(z, D::Minus1)?;
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
