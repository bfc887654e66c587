//! The LM head over a recorded pass: logits of its rows, and the cotangent that a target
//! scalar (a token's logit, log-probability or negative log-likelihood) puts on the final
//! normed hidden state, tied embeddings included (the head's weight is the embedding then).

use anyhow::{Context, Result};
use candle_core::{Tensor, D};

use super::Pass;
use crate::model::Transformer;

/// Which scalar's gradient is measured (docs/method.md section 2; default: the raw logit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
