//! Log-probabilities of sampled responses under the policy, with gradients.
//!
//! The responses of one prompt are packed into one row behind a single copy of the prompt
//! (`AttnInput::packed`): a group of G responses costs P + sum |o_i| token positions instead
//! of G (P + |o_i|), in the forward and in the backward.

use anyhow::{ensure, Result};
use candle_core::{DType, Tensor, D};
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
