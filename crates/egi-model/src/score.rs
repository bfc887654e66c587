//! Teacher-forced scoring: for every response token its raw logit, log-probability and the
//! entropy of the distribution that predicted it.

use anyhow::{bail, Result};
use candle_core::Tensor;

use crate::model::Transformer;
use crate::pass::head;

#[derive(Debug, Clone, PartialEq)]
pub struct TokenScore {
    pub pos: usize,
    pub id: u32,
    /// Raw logit z[pos-1][id].
    pub logit: f64,
    /// log softmax(z[pos-1])[id], computed in f64.
    pub logprob: f64,
    /// -sum p ln p over the full vocabulary at temperature 1 (nats), in f64.
    pub entropy: f64,
}

/// Scores of positions `n_prompt..` of one sequence.
pub fn score_ids(model: &Transformer, ids: &[u32], n_prompt: usize) -> Result<Vec<TokenScore>> {
    Ok(score_batch(model, &[(ids.to_vec(), n_prompt)])?.remove(0))
}

/// Score several sequences in one right-padded batch.
pub fn score_batch(
    model: &Transformer,
    seqs: &[(Vec<u32>, usize)],
) -> Result<Vec<Vec<TokenScore>>> {
    let t = seqs.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    for (i, (s, n)) in seqs.iter().enumerate() {
        if *n == 0 || *n >= s.len() {
            bail!("sequence {i}: n_prompt {n} must be in 1..{} (at least one prompt and one response token)", s.len());
        }
    }
    let ctx = model.cfg.max_position_embeddings;
    if t > ctx {
        bail!("sequence of {t} tokens is longer than the model's context ({ctx})");
    }
    let mut flat = Vec::with_capacity(seqs.len() * t);
    for (s, _) in seqs {
        flat.extend(s);
        flat.extend(std::iter::repeat_n(0u32, t - s.len()));
    }
    let ids = Tensor::from_vec(flat, (seqs.len(), t), model.device())?;
    let logits = model.forward(&ids)?.detach();
    let mut out = Vec::with_capacity(seqs.len());
    for (b, (s, n)) in seqs.iter().enumerate() {
        // Positions n-1 .. len-2 predict tokens n .. len-1.
        let z = logits.get(b)?.narrow(0, n - 1, s.len() - n)?;
        let stats = head::token_stats(&z, &s[*n..])?;
        out.push(
            stats
                .iter()
                .enumerate()
                .map(|(i, st)| TokenScore {
                    pos: n + i,
                    id: s[n + i],
                    logit: st.logit,
                    logprob: st.logprob,
                    entropy: st.entropy,
                })
                .collect(),
        );
    }
    Ok(out)
}
