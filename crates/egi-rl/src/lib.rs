//! Reinforcement learning from verifiable rewards, and supervised fine-tuning.
//!
//! Data flows one way: [`task`] (prompts, checks) -> rollouts (egi-generate) -> [`reward`]
//! (verifier, format, overlong, fingerprint) -> [`advantage`] -> [`loss`] (GRPO, Dr.GRPO, DAPO,
//! GSPO surrogates) -> [`optim`] (AdamW). [`rl::Trainer`] runs the loop, [`sft`] the
//! supervised one; [`checkpoint`] makes both resumable. [`bench`] times one step per algorithm
//! (`egi bench --train`).

pub mod advantage;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod lora;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod policy;
pub mod policy_state;
pub mod reward;
pub mod rl;
pub mod settings;
pub mod sft;
pub mod task;

pub use config::{Algo, Backward, TrainConfig, TrainFlags, Trainable};
pub use loss::Base;
pub use rl::Trainer;
pub use task::{Check, LengthParity, MathTask, Task};

pub use egi_report::write_atomic;
