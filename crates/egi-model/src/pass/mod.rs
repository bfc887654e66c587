//! One recorded forward pass and the backward passes over it.
//!
//! [`Pass::record`] runs the model's forward over one row of tokens (any positions and
//! additive mask: one sequence, or a prompt packed with several responses) and keeps what a
//! backward needs. Two backwards read it:
//! - [`Pass::backward`] (weights.rs): the gradient of every wanted weight from one cotangent
//!   on the final hidden states (training: RL and SFT);
//! - [`Pass::backward_targets`] (targets.rs): the cotangents at the outputs of the q/k/v/o
//!   projections for K scalars at once, each over its own causal prefix (the fingerprint).
//!
//! [`head`] holds the LM head's side: logits of recorded rows and the cotangent a target
//! scalar puts on the final hidden state.
//!
//! Why not candle's autograd: its backward computes both operands' gradients of every op,
//! walks each broadcast and reshape, and allocates a tensor per step; on the default model it
//! takes about 3x the forward, two thirds of it outside the matmuls, and it needs a forward
//! per target. Here the backward is its matmuls plus a few elementwise passes, and only the
//! wanted gradients are formed. The forward uses the same formulas as
//! [`Transformer::forward_hidden`](crate::Transformer::forward_hidden); tests check the hidden
//! states and every gradient against autograd (itself checked against finite differences) on
//! tiny models of every architecture, and the probe's norms against autograd + full SVD.

use candle_core::Tensor;

pub mod head;
mod ops;
mod record;
mod targets;
mod weights;

pub use head::Target;
pub use ops::{rope_heads, rope_heads_bwd};
pub use targets::Proj;

/// One layer's activations over the row (T positions).
pub struct Saved {
    /// Residual stream entering the layer and its RMS factor [T, 1]; normed input a [T, H].
    pub h: Tensor,
    pub r_in: Tensor,
    pub a: Tensor,
    /// Qwen3: q / k before their per-head norm [T, n, hd] and the RMS factors [T, n, 1].
    pub q_pre: Option<(Tensor, Tensor)>,
    pub k_pre: Option<(Tensor, Tensor)>,
    /// Rotated q [nkv, n_rep*T, hd] (heads grouped by kv head), rotated k and v [nkv, T, hd].
    pub qr: Tensor,
    pub kr: Tensor,
    pub v: Tensor,
    /// Softmax weights [nkv, n_rep*T, T]; attention output [T, nh*hd].
    pub probs: Tensor,
    pub ctx: Tensor,
    pub h2: Tensor,
    pub r_post: Tensor,
    /// The MLP's inputs for the weight gradients (normed h2 [T, H], silu(g) u [T, I]): kept
    /// only by a pass recorded for training ([`Pass::record`]); the K-target backward reads
    /// neither, and memory freed early keeps the probe's forward fast.
    pub m: Option<Tensor>,
    pub g: Tensor,
    pub u: Tensor,
    pub act: Option<Tensor>,
}

/// A recorded forward pass over one row.
pub struct Pass {
    pub layers: Vec<Saved>,
    /// The row's token ids [T].
    ids: Tensor,
    /// Residual stream after the last layer [T, H] and its final RMS factor [T, 1].
    pub h_last: Tensor,
    pub r_final: Tensor,
    /// Hidden states after the final norm, [T, H] (what the LM head reads).
    pub hidden: Tensor,
    /// Rotary tables at the row's positions, [T, hd].
    cos: Tensor,
    sin: Tensor,
}

/// Gradients by parameter index (`Transformer::params` order); None when not wanted.
pub type Grads = Vec<Option<Tensor>>;
