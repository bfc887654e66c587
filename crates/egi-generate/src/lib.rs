//! egi-generate: batched sampling with a KV cache on an egi-model transformer.
//!
//! - [`sampling`]: greedy / temperature / top-k / top-p choice of one token, seeded;
//! - [`generate`]: batched, left-padded generation with EOS, stop strings and per-request seeds;
//! - [`bench`]: `egi bench`'s prefill, decode and forward+backward speed on one model.

pub mod bench;
pub mod generate;
pub mod sampling;

pub use generate::{
    generate, generate_ids, generate_with_progress, Completion, FinishReason, Request,
};
pub use sampling::SamplingParams;
