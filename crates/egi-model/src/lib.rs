//! egi-model: a differentiable transformer runtime on candle.
//!
//! - [`source`]: what `--model` names (GGUF file, HF directory, `default`, hub id);
//! - [`config`], [`weights`]: hyper-parameters and tensors from HF or GGUF checkpoints;
//! - [`tokenizer`], [`chat`]: tokenizers from tokenizer.json or GGUF metadata, chat templates;
//! - `layer`: one decoder layer, written once, over the ops each forward supplies;
//! - [`model`]: Llama / Qwen2 / Qwen3 forward passes, exact gradients, KV-cache inference;
//! - [`pass`]: the recorded forward and its hand-written backwards (training, fingerprint);
//! - [`device`]: `--device` (CPU or CUDA GPU) and `--dtype`;
//! - [`load`]: all of the above in one call, and saving back to an HF directory;
//! - [`text`]: prompt + response tokenization shared by scoring, the probe and RL;
//! - [`bench`]: the device's measured copy bandwidth and matmul rate (`egi bench`).

pub mod alloc;
pub mod bench;
pub mod chat;
pub mod config;
pub mod device;
pub mod pass;
#[macro_use]
pub mod fastops;
pub mod kernels;
mod layer;
pub mod load;
pub mod model;
pub mod score;
pub mod source;
pub mod testing;
pub mod text;
pub mod tokenizer;
mod view;
pub mod weights;

pub use config::{Arch, ModelConfig};
pub use device::{device_name, parse_dtype, select_device};
pub use load::{load, save_hf_dir, GenerationDefaults, LoadedModel};
pub use model::{AttnInput, KvCache, LayerView, StateLoad, Transformer};
pub use tokenizer::Tokenizer;
