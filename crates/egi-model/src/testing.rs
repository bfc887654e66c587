//! Tiny random models for unit tests here and in the crates built on this one (probe, RL):
//! every weight random, biases and norm weights away from their defaults so that every
//! parameter matters to the output.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};

use crate::config::{Arch, Llama3RopeScaling, ModelConfig};
use crate::model::Transformer;
use crate::weights::Weights;

/// A small config of the given family: vocab 61, hidden 32, 2 layers, 4 heads, 2 kv heads.
pub fn tiny_config(arch: Arch) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: 61,
        hidden_size: 32,
        intermediate_size: 48,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: if arch == Arch::Qwen3 { 12 } else { 8 },
        rms_norm_eps: 1e-6,
        rope_theta: 10000.0,
        rope_scaling: (arch == Arch::Llama).then_some(Llama3RopeScaling {
            factor: 4.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 16,
        }),
        max_position_embeddings: 512,
        tie_word_embeddings: arch != Arch::Qwen2,
        attention_bias: arch == Arch::Qwen2,
        qk_norm: arch == Arch::Qwen3,
        bos_token_id: Some(1),
        eos_token_ids: vec![2],
    }
}

/// Random weights for `cfg` (deterministic in `seed`).
pub fn random_weights(cfg: &ModelConfig, seed: u64) -> Result<Weights> {
    // A small LCG so the weights do not depend on candle's RNG (which is not seedable on CPU).
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let dev = Device::Cpu;
    let mut rnd = |shape: &[usize], scale: f64, offset: f64| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| offset + scale * next()).collect();
        Ok(Tensor::from_vec(v, shape, &dev)?.to_dtype(DType::F32)?)
    };
    let h = cfg.hidden_size;
    let qd = cfg.num_heads * cfg.head_dim;
    let kvd = cfg.num_kv_heads * cfg.head_dim;
    let i = cfg.intermediate_size;
    let s = |fan_in: usize| 1.7 / (fan_in as f64).sqrt();
    let mut w = Weights::new();
    w.insert(
        "model.embed_tokens.weight".into(),
        rnd(&[cfg.vocab_size, h], 1.0, 0.0)?,
    );
    for l in 0..cfg.num_layers {
        let p = |x: &str| format!("model.layers.{l}.{x}");
        w.insert(p("input_layernorm.weight"), rnd(&[h], 0.3, 1.0)?);
        w.insert(p("post_attention_layernorm.weight"), rnd(&[h], 0.3, 1.0)?);
        w.insert(p("self_attn.q_proj.weight"), rnd(&[qd, h], s(h), 0.0)?);
        w.insert(p("self_attn.k_proj.weight"), rnd(&[kvd, h], s(h), 0.0)?);
        w.insert(p("self_attn.v_proj.weight"), rnd(&[kvd, h], s(h), 0.0)?);
        w.insert(p("self_attn.o_proj.weight"), rnd(&[h, qd], s(qd), 0.0)?);
        if cfg.attention_bias {
            w.insert(p("self_attn.q_proj.bias"), rnd(&[qd], 0.3, 0.0)?);
            w.insert(p("self_attn.k_proj.bias"), rnd(&[kvd], 0.3, 0.0)?);
            w.insert(p("self_attn.v_proj.bias"), rnd(&[kvd], 0.3, 0.0)?);
        }
        if cfg.qk_norm {
            w.insert(
                p("self_attn.q_norm.weight"),
                rnd(&[cfg.head_dim], 0.3, 1.0)?,
            );
            w.insert(
                p("self_attn.k_norm.weight"),
                rnd(&[cfg.head_dim], 0.3, 1.0)?,
            );
        }
        w.insert(p("mlp.gate_proj.weight"), rnd(&[i, h], s(h), 0.0)?);
        w.insert(p("mlp.up_proj.weight"), rnd(&[i, h], s(h), 0.0)?);
        w.insert(p("mlp.down_proj.weight"), rnd(&[h, i], s(i), 0.0)?);
    }
    w.insert("model.norm.weight".into(), rnd(&[h], 0.3, 1.0)?);
    if !cfg.tie_word_embeddings {
        w.insert(
            "lm_head.weight".into(),
            rnd(&[cfg.vocab_size, h], s(h), 0.0)?,
        );
    }
    Ok(w)
}

/// A tiny random model of `arch` in `dtype`.
pub fn tiny_random(arch: Arch, dtype: DType, seed: u64) -> Result<Transformer> {
    let cfg = tiny_config(arch);
    let w = random_weights(&cfg, seed)?;
    Transformer::from_weights(cfg, w, dtype, &Device::Cpu, "tiny-random")
}

/// A tiny random Llama (tiny_config's shape, a two-layer model of a few MB) that reads and
/// writes text with the tokenizer and chat template of `spec` (for example `default`), saved
/// as a Hugging Face directory at `dir`: for end-to-end tests of commands whose plumbing, not
/// whose model, is under test (a study's stages, resume, reports), at a thousandth of the
/// real model's cost. Deterministic in `seed`.
pub fn save_tiny_with_tokenizer_of(spec: &str, seed: u64, dir: &std::path::Path) -> Result<()> {
    let src = crate::load::load(spec, DType::F32, &Device::Cpu)?;
    let tokenizer = src.tokenizer()?;
    let real = &src.model.cfg;
    let cfg = ModelConfig {
        vocab_size: real.vocab_size,
        rope_scaling: None,
        max_position_embeddings: real.max_position_embeddings,
        bos_token_id: real.bos_token_id,
        eos_token_ids: real.eos_token_ids.clone(),
        ..tiny_config(Arch::Llama)
    };
    let w = random_weights(&cfg, seed)?;
    let model = Transformer::from_weights(cfg, w, DType::F32, &Device::Cpu, "tiny-random")?;
    crate::load::save_hf_dir(&model, Some(tokenizer), &src.generation, dir)
}
