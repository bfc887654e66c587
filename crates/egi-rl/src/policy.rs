//! Log-probabilities of sampled responses under the policy, with gradients.
//!
//! The responses of one prompt are packed into one row behind a single copy of the prompt
//! (`AttnInput::packed`): a group of G responses costs P + sum |o_i| token positions instead
//! of G (P + |o_i|), in the forward and in the backward.

use anyhow::{ensure, Result};
use candle_core::Tensor;
use egi_model::pass::head::{self, HeadPass};
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
    head::logprobs(model, &h, &Tensor::from_slice(&pk.tgt, n, dev)?, chunk)
}

/// The same log-probabilities through egi-model's hand-written training pass, and their
/// backward: from dL/d logp per token to the gradient of every wanted weight. The vocabulary
/// projection runs `chunk` tokens at a time in both directions (recomputed in the backward,
/// so memory stays bounded by one chunk of logits).
pub struct LogprobPass {
    pass: Pass,
    src: Tensor,
    tgt_ids: Vec<u32>,
    head: HeadPass,
    /// ln pi(token) [n] (model dtype, no graph) and the entropy (nats) at each token.
    pub logp: Tensor,
    pub ent: Vec<f32>,
}

pub use egi_model::pass::head::PROBS_BUDGET;

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
        let src = Tensor::from_slice(&pk.src, pk.src.len(), dev)?;
        let h = pass.hidden.index_select(&src, 0)?;
        let head = HeadPass::forward(model, &h, &pk.tgt, chunk, probs_budget)?;
        Ok(LogprobPass {
            pass,
            src,
            tgt_ids: pk.tgt.clone(),
            logp: head.logp.clone(),
            ent: head.ent.clone(),
            head,
        })
    }

    /// The recorded body pass (activations of every layer over the packed row).
    pub fn body(&self) -> &Pass {
        &self.pass
    }

    /// Gradients (by parameter index) of the scalar L whose derivatives are `dlogp` [n]:
    /// through the head ([`HeadPass::backward`]) to the hidden rows, then the body pass.
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
        let c = dlogp.to_dtype(model.dtype())?.unsqueeze(1)?; // [n, 1]
        let h = self.pass.hidden.index_select(&self.src, 0)?;
        let head = model.lm_head_index();
        let (dh_src, d_head) = self
            .head
            .backward(model, &h, &self.tgt_ids, &c, want(head))?;
        let hidden = &self.pass.hidden;
        let d_hidden = if n == 0 {
            hidden.zeros_like()?
        } else {
            hidden.zeros_like()?.index_add(&self.src, &dh_src, 0)?
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
