//! Log-probabilities of sampled responses under the policy, with gradients.
//!
//! The responses of one prompt are packed into one row behind a single copy of the prompt
//! (`AttnInput::packed`): a group of G responses costs P + sum |o_i| token positions instead
//! of G (P + |o_i|), in the forward and in the backward.

use anyhow::{ensure, Result};
use candle_core::{DType, Tensor, D};
use egi_model::fastops;
use egi_model::pass::{Grads, Pass};
use egi_model::{AttnInput, Transformer};

/// A prompt and some of its responses, laid out for one forward pass.
pub struct Packed {
    pub ids: Vec<u32>,
    pub prefix: usize,
    pub blocks: Vec<usize>,
    /// For each response token (in order): the position whose output predicts it, and it.
    pub src: Vec<u32>,
    pub tgt: Vec<u32>,
    /// Local response index of each response token.
    pub seq: Vec<usize>,
}

/// Response i's block holds its tokens except the last (which predicts nothing); its first
/// token is predicted by the prompt's last position.
pub fn pack(prompt: &[u32], responses: &[&[u32]]) -> Packed {
    let p = prompt.len();
    let mut ids = prompt.to_vec();
    let (mut src, mut tgt, mut seq, mut blocks) = (vec![], vec![], vec![], vec![]);
    for (i, r) in responses.iter().enumerate() {
        let start = ids.len();
        for (j, &t) in r.iter().enumerate() {
            src.push(if j == 0 { p - 1 } else { start + j - 1 } as u32);
            tgt.push(t);
            seq.push(i);
        }
        let n = r.len().saturating_sub(1);
        ids.extend(&r[..n]);
        blocks.push(n);
    }
    Packed {
        ids,
        prefix: p,
        blocks,
        src,
        tgt,
        seq,
    }
}

/// ln pi(token) for every response token ([n], differentiable) and the policy's entropy at
/// each (detached, nats). The vocabulary projection runs `chunk` tokens at a time.
pub fn token_logprobs(
    model: &Transformer,
    pk: &Packed,
    chunk: usize,
) -> Result<(Tensor, Vec<f32>)> {
    ensure!(pk.prefix > 0, "empty prompt");
    let dev = model.device();
    let t = pk.ids.len();
    let ids = Tensor::from_slice(&pk.ids, (1, t), dev)?;
    let attn = AttnInput::packed(pk.prefix, &pk.blocks, model.dtype(), dev)?;
    let hidden = model.forward_hidden(&ids, &attn)?.squeeze(0)?;
    let n = pk.src.len();
    let h = hidden.index_select(&Tensor::from_slice(&pk.src, n, dev)?, 0)?;
    let tg = Tensor::from_slice(&pk.tgt, n, dev)?;
    let (mut parts, mut ent) = (vec![], Vec::with_capacity(n));
    let mut start = 0;
    while start < n {
        let m = chunk.max(1).min(n - start);
        let logits = h
            .narrow(0, start, m)?
            .matmul(&model.lm_head_weight().t()?)?;
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let l = lsm.detach();
        let e = (l.exp()? * &l)?.sum(D::Minus1)?.neg()?;
        ent.extend(e.to_dtype(DType::F32)?.to_vec1::<f32>()?);
        parts.push(
            lsm.gather(&tg.narrow(0, start, m)?.unsqueeze(1)?, 1)?
                .squeeze(1)?,
        );
        start += m;
    }
    let logp = if parts.is_empty() {
        Tensor::zeros(0, model.dtype(), dev)?
    } else {
        Tensor::cat(&parts, 0)?
    };
    Ok((logp, ent))
}

/// The same log-probabilities through egi-model's hand-written training pass, and their
/// backward: from dL/d logp per token to the gradient of every wanted weight. The vocabulary
/// projection runs `chunk` tokens at a time in both directions (recomputed in the backward,
/// so memory stays bounded by one chunk of logits).
pub struct LogprobPass {
    pass: Pass,
    src: Tensor,
    tgt: Tensor,
    tgt_ids: Vec<u32>,
    chunk: usize,
    /// ln pi(token) [n] (model dtype, no graph) and the entropy (nats) at each token.
    pub logp: Tensor,
    pub ent: Vec<f32>,
    /// The head's softmax per chunk of targets, when kept (see [`PROBS_BUDGET`]).
    probs: Option<Vec<Tensor>>,
}

/// Largest head softmax (bytes) a recorded pass keeps for its backward: beyond it the
/// backward recomputes the logits (a matmul and a softmax per chunk) instead.
pub const PROBS_BUDGET: usize = 256 << 20;

impl LogprobPass {
    pub fn record(model: &Transformer, pk: &Packed, chunk: usize) -> Result<Self> {
        Self::record_budget(model, pk, chunk, PROBS_BUDGET)
    }

    /// [`LogprobPass::record`] keeping the head's softmax only up to `probs_budget` bytes.
    pub fn record_budget(
        model: &Transformer,
        pk: &Packed,
        chunk: usize,
        probs_budget: usize,
    ) -> Result<Self> {
        ensure!(pk.prefix > 0, "empty prompt");
        let dev = model.device();
        let attn = AttnInput::packed(pk.prefix, &pk.blocks, model.dtype(), dev)?;
        let pass = Pass::record(model, &pk.ids, &attn)?;
        let n = pk.src.len();
        let src = Tensor::from_slice(&pk.src, n, dev)?;
        let tgt = Tensor::from_slice(&pk.tgt, n, dev)?;
        let h = pass.hidden.index_select(&src, 0)?;
        let e = model.lm_head_weight().detach();
        let (mut logp, mut ent) = (vec![], Vec::with_capacity(n));
        let chunk = chunk.max(1);
        // The softmax is kept for the backward when all of it fits in PROBS_BUDGET bytes;
        // otherwise the backward recomputes it chunk by chunk.
        let keep = n * e.dim(0)? * 4 <= probs_budget;
        let mut probs = vec![];
        for start in (0..n).step_by(chunk) {
            let m = chunk.min(n - start);
            let z = h.narrow(0, start, m)?.matmul(&e.t()?)?;
            if let Some(r) = fastops::head_rows(&z, &pk.tgt[start..start + m])? {
                ent.extend(r.entropy);
                logp.push(Tensor::from_vec(r.logp, m, dev)?);
                if keep {
                    probs.push(r.probs);
                }
                continue;
            }
            let lsm = candle_nn::ops::log_softmax(&z, D::Minus1)?;
            ent.extend(
                (lsm.exp()? * &lsm)?
                    .sum(D::Minus1)?
                    .neg()?
                    .to_dtype(DType::F32)?
                    .to_vec1::<f32>()?,
            );
            let l = lsm.gather(&tgt.narrow(0, start, m)?.unsqueeze(1)?, 1)?;
            logp.push(l.squeeze(1)?);
        }
        let probs = (keep && probs.len() == n.div_ceil(chunk)).then_some(probs);
        let logp = if logp.is_empty() {
            Tensor::zeros(0, model.dtype(), dev)?
        } else {
            Tensor::cat(&logp, 0)?
        };
        Ok(LogprobPass {
            pass,
            src,
            tgt,
            tgt_ids: pk.tgt.clone(),
            chunk,
            logp,
            ent,
            probs,
        })
    }

    /// The recorded body pass (activations of every layer over the packed row).
    pub fn body(&self) -> &Pass {
        &self.pass
    }

    /// Gradients (by parameter index) of the scalar L whose derivatives are `dlogp` [n].
    /// With c = dL/d logp: d logits = c (onehot - softmax), so the head's input gets
    /// c (E[y] - p E) and the head c (onehot - p)^T h.
    pub fn backward(
        &self,
        model: &Transformer,
        dlogp: &Tensor,
        want: &dyn Fn(usize) -> bool,
    ) -> Result<Grads> {
        let n = self.ent.len();
        ensure!(
            dlogp.dims() == [n],
            "dlogp has shape {:?}, expected [{n}]",
            dlogp.dims()
        );
        let dt = model.dtype();
        let c = dlogp.to_dtype(dt)?.unsqueeze(1)?; // [n, 1]
        let e = model.lm_head_weight().detach();
        let h = self.pass.hidden.index_select(&self.src, 0)?;
        let head = model.lm_head_index();
        let want_head = want(head);
        let mut dh_src = vec![];
        let mut d_head: Option<Tensor> = None;
        for start in (0..n).step_by(self.chunk) {
            let m = self.chunk.min(n - start);
            let hc = h.narrow(0, start, m)?;
            let cc = c.narrow(0, start, m)?;
            let p = match &self.probs {
                Some(ps) => ps[start / self.chunk].clone(),
                None => candle_nn::ops::softmax_last_dim(&hc.matmul(&e.t()?)?)?,
            };
            let tg = self.tgt.narrow(0, start, m)?;
            let cv: Vec<f32> = cc.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
            let (dh_c, g) = match fastops::head_dlogits(&p, &self.tgt_ids[start..start + m], &cv)? {
                // d logits = c (onehot - p), [m, V]: one matmul for the head's input and one
                // for the head.
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
            dh_src.push(dh_c);
            if let Some(g) = g {
                d_head = Some(match d_head {
                    Some(x) => (x + g)?,
                    None => g,
                });
            }
        }
        let hidden = &self.pass.hidden;
        let d_hidden = if dh_src.is_empty() {
            hidden.zeros_like()?
        } else {
            hidden
                .zeros_like()?
                .index_add(&self.src, &Tensor::cat(&dh_src, 0)?, 0)?
        };
        // A tied head's gradient is also the embedding's: the body pass adds its gather
        // gradient into it.
        let tied = head == model.embed_index();
        let (base, rest) = if tied { (d_head, None) } else { (None, d_head) };
        let mut grads = self.pass.backward_into(model, &d_hidden, want, base)?;
        if let Some(g) = rest {
            grads[head] = Some(match grads[head].take() {
                Some(x) => (x + g)?,
                None => g,
            });
        }
        Ok(grads)
    }
}
