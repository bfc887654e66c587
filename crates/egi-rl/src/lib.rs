//! Reinforcement learning from verifiable rewards, and supervised fine-tuning.
//!
//! Data flows one way: [`task`] (prompts, checks) -> rollouts (egi-generate) -> [`reward`]
//! (verifier, format, overlong, fingerprint) -> [`advantage`] -> [`loss`] (GRPO, Dr.GRPO, DAPO,
//! GSPO surrogates) -> [`optim`] (AdamW). [`rl::Trainer`] runs the loop, [`sft`] the
//! supervised one; [`checkpoint`] makes both resumable.

pub mod advantage;
pub mod checkpoint;
pub mod config;
pub mod lora;
pub mod loss;
pub mod optim;
pub mod policy;
pub mod policy_state;
pub mod reward;
pub mod rl;
pub mod sft;
pub mod task;

pub use config::{Algo, Backward, TrainConfig, Trainable};
pub use loss::Base;
pub use rl::Trainer;
pub use task::{Check, LengthParity, MathTask, Task};

/// Write a file through a temporary sibling and a rename (never half-written).
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}
