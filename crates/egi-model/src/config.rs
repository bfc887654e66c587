//! Model hyper-parameters, read from a Hugging Face `config.json` or from GGUF metadata, and
//! written back as a `config.json` that transformers loads.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// The decoder-only families egi runs. They differ only in small ways, so one model definition
/// (`model.rs`) serves all of them, switching on these flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3, SmolLM2, Mistral-style: no biases.
    Llama,
    /// Qwen2 / Qwen2.5: biases on q, k, v.
    Qwen2,
    /// Qwen3: RMSNorm on q and k per head, no biases.
    Qwen3,
}

impl Arch {
    pub fn model_type(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }
    pub fn hf_class(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Qwen3 => "Qwen3ForCausalLM",
        }
    }
    pub fn from_model_type(s: &str) -> Option<Arch> {
        match s {
            "llama" | "mistral" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            "qwen3" => Some(Arch::Qwen3),
            _ => None,
        }
    }
}

/// Llama-3 style frequency-dependent RoPE scaling ("rope_type": "llama3").
#[derive(Debug, Clone, PartialEq)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v projections (Qwen2 always; Llama when `attention_bias`).
    pub attention_bias: bool,
    /// Per-head RMSNorm of q and k before RoPE (Qwen3).
    pub qk_norm: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

fn get<'a>(v: &'a Value, key: &str, file: &Path) -> Result<&'a Value> {
    match v.get(key) {
        Some(x) if !x.is_null() => Ok(x),
        _ => bail!(
            "{}: missing field \"{key}\" (required for this architecture)",
            file.display()
        ),
    }
}

fn get_usize(v: &Value, key: &str, file: &Path) -> Result<usize> {
    get(v, key, file)?
        .as_u64()
        .map(|x| x as usize)
        .with_context(|| {
            format!(
                "{}: field \"{key}\" must be a non-negative integer",
                file.display()
            )
        })
}

fn get_f64(v: &Value, key: &str, file: &Path) -> Result<f64> {
    get(v, key, file)?
        .as_f64()
        .with_context(|| format!("{}: field \"{key}\" must be a number", file.display()))
}

/// `eos_token_id` may be an int or a list of ints.
pub(crate) fn ids_of(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        _ => vec![],
    }
}

impl ModelConfig {
    pub fn n_rep(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }

    /// Parse a transformers `config.json` (both the transformers-5 `rope_parameters` form and the
    /// older top-level `rope_theta` / `rope_scaling` form).
    pub fn from_hf_json(v: &Value, file: &Path) -> Result<Self> {
        let model_type = get(v, "model_type", file)?.as_str().unwrap_or("");
        let arch = Arch::from_model_type(model_type).with_context(|| {
            format!(
                "{}: unsupported architecture model_type \"{model_type}\" (egi runs llama, qwen2, qwen3)",
                file.display()
            )
        })?;
        let hidden_size = get_usize(v, "hidden_size", file)?;
        let num_heads = get_usize(v, "num_attention_heads", file)?;
        let num_kv_heads = match v.get("num_key_value_heads") {
            Some(x) if !x.is_null() => get_usize(v, "num_key_value_heads", file)?,
            _ => num_heads,
        };
        if num_heads == 0 || num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            bail!(
                "{}: num_attention_heads ({num_heads}) must be a positive multiple of num_key_value_heads ({num_kv_heads})",
                file.display()
            );
        }
        let head_dim = match v.get("head_dim") {
            Some(x) if !x.is_null() => get_usize(v, "head_dim", file)?,
            _ => hidden_size / num_heads,
        };
        // Rope settings: transformers 5 nests them under rope_parameters.
        let rope = v.get("rope_parameters").filter(|x| x.is_object());
        let rope_theta = match rope.and_then(|r| r.get("rope_theta")) {
            Some(t) => t.as_f64().with_context(|| {
                format!(
                    "{}: rope_parameters.rope_theta must be a number",
                    file.display()
                )
            })?,
            None => match v.get("rope_theta") {
                Some(t) if !t.is_null() => get_f64(v, "rope_theta", file)?,
                _ => 10000.0,
            },
        };
        let scaling = rope
            .or_else(|| v.get("rope_scaling").filter(|x| x.is_object()))
            .cloned();
        let rope_scaling = match scaling {
            None => None,
            Some(s) => {
                let kind = s
                    .get("rope_type")
                    .or_else(|| s.get("type"))
                    .and_then(|x| x.as_str())
                    .unwrap_or("default");
                match kind {
                    "default" => None,
                    "llama3" => {
                        let f = |k: &str| -> Result<f64> {
                            s.get(k).and_then(|x| x.as_f64()).with_context(|| {
                                format!("{}: llama3 rope scaling needs \"{k}\"", file.display())
                            })
                        };
                        Some(Llama3RopeScaling {
                            factor: f("factor")?,
                            low_freq_factor: f("low_freq_factor")?,
                            high_freq_factor: f("high_freq_factor")?,
                            original_max_position_embeddings: f("original_max_position_embeddings")?
                                as usize,
                        })
                    }
                    other => bail!(
                        "{}: unsupported rope scaling type \"{other}\" (egi supports default and llama3)",
                        file.display()
                    ),
                }
            }
        };
        let attention_bias = match arch {
            Arch::Qwen2 => true,
            _ => v
                .get("attention_bias")
                .and_then(|x| x.as_bool())
                .unwrap_or(false),
        };
        if v.get("mlp_bias").and_then(|x| x.as_bool()).unwrap_or(false) {
            bail!("{}: mlp_bias=true is not supported", file.display());
        }
        let act = v
            .get("hidden_act")
            .and_then(|x| x.as_str())
            .unwrap_or("silu");
        if act != "silu" {
            bail!(
                "{}: hidden_act \"{act}\" is not supported (egi implements silu)",
                file.display()
            );
        }
        Ok(ModelConfig {
            arch,
            vocab_size: get_usize(v, "vocab_size", file)?,
            hidden_size,
            intermediate_size: get_usize(v, "intermediate_size", file)?,
            num_layers: get_usize(v, "num_hidden_layers", file)?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: get_f64(v, "rms_norm_eps", file)?,
            rope_theta,
            rope_scaling,
            max_position_embeddings: v
                .get("max_position_embeddings")
                .and_then(|x| x.as_u64())
                .unwrap_or(4096) as usize,
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(|x| x.as_bool())
                .unwrap_or(false),
            attention_bias,
            qk_norm: arch == Arch::Qwen3,
            bos_token_id: v
                .get("bos_token_id")
                .and_then(|x| x.as_u64())
                .map(|x| x as u32),
            eos_token_ids: ids_of(v.get("eos_token_id")),
        })
    }

    pub fn from_hf_file(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{}: cannot read config", file.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", file.display()))?;
        Self::from_hf_json(&v, file)
    }

    /// The `config.json` transformers needs to rebuild this model.
    pub fn to_hf_json(&self) -> Value {
        let mut v = json!({
            "architectures": [self.arch.hf_class()],
            "model_type": self.arch.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": self.attention_bias,
            "mlp_bias": false,
            "attention_dropout": 0.0,
            "torch_dtype": "float32",
            "use_cache": true,
        });
        if let Some(s) = &self.rope_scaling {
            v["rope_scaling"] = json!({
                "rope_type": "llama3",
                "factor": s.factor,
                "low_freq_factor": s.low_freq_factor,
                "high_freq_factor": s.high_freq_factor,
                "original_max_position_embeddings": s.original_max_position_embeddings,
            });
        }
        if let Some(b) = self.bos_token_id {
            v["bos_token_id"] = json!(b);
        }
        match self.eos_token_ids.as_slice() {
            [] => {}
            [e] => v["eos_token_id"] = json!(e),
            es => v["eos_token_id"] = json!(es),
        }
        if self.arch != Arch::Llama {
            v["use_sliding_window"] = json!(false);
            v["sliding_window"] = Value::Null;
            v["max_window_layers"] = json!(self.num_layers);
        }
        v
    }

    /// Inverse frequencies of RoPE, with Llama-3 scaling applied (as transformers'
    /// `_compute_llama3_parameters`).
    pub fn rope_inv_freq(&self) -> Vec<f64> {
        let d = self.head_dim;
        let mut inv: Vec<f64> = (0..d / 2)
            .map(|i| 1.0 / self.rope_theta.powf((2 * i) as f64 / d as f64))
            .collect();
        if let Some(s) = &self.rope_scaling {
            let old = s.original_max_position_embeddings as f64;
            let low_wavelen = old / s.low_freq_factor;
            let high_wavelen = old / s.high_freq_factor;
            for f in inv.iter_mut() {
                let wavelen = 2.0 * std::f64::consts::PI / *f;
                if wavelen > low_wavelen {
                    *f /= s.factor;
                } else if wavelen >= high_wavelen {
                    let smooth = (old / wavelen - s.low_freq_factor)
                        / (s.high_freq_factor - s.low_freq_factor);
                    *f = (1.0 - smooth) * *f / s.factor + smooth * *f;
                }
            }
        }
        inv
    }

    /// Parameters of the non-embedding part (what a forward pass multiplies per token).
    pub fn n_params(&self) -> (usize, usize) {
        let h = self.hidden_size;
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        let per_layer = h * q + 2 * h * kv + q * h + 3 * h * self.intermediate_size + 2 * h;
        let emb = self.vocab_size * h;
        let lm = if self.tie_word_embeddings { 0 } else { emb };
        (self.num_layers * per_layer + h, emb + lm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_matches_transformers_rule() {
        // Reference rule: wavelengths longer than old/low_freq are divided by factor, shorter
        // than old/high_freq kept, smooth in between.
        let v = json!({"model_type":"llama","hidden_size":64,"num_attention_heads":4,
            "num_key_value_heads":2,"intermediate_size":8,"num_hidden_layers":1,"vocab_size":8,
            "rms_norm_eps":1e-6,"head_dim":16,
            "rope_parameters":{"rope_theta":500000.0,"rope_type":"llama3","factor":8.0,
            "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":32}});
        let c = ModelConfig::from_hf_json(&v, Path::new("config.json")).unwrap();
        let plain: Vec<f64> = (0..8)
            .map(|i| 1.0 / 500000f64.powf(2.0 * i as f64 / 16.0))
            .collect();
        let inv = c.rope_inv_freq();
        // Wavelength 2*pi < 32/4: unchanged; every other one here is longer than 32: divided.
        assert_eq!(inv[0], plain[0]);
        for i in 1..8 {
            assert!((inv[i] - plain[i] / 8.0).abs() < 1e-18, "{i}");
        }
        // A wavelength between 8 and 32 is interpolated.
        let mut c2 = c.clone();
        c2.rope_theta = 10.0;
        let inv2 = c2.rope_inv_freq();
        let w = 2.0 * std::f64::consts::PI * 10f64.powf(2.0 / 16.0);
        assert!(w > 8.0 && w < 32.0);
        let p1 = 1.0 / 10f64.powf(2.0 / 16.0);
        let smooth = (32.0 / w - 1.0) / 3.0;
        assert!((inv2[1] - ((1.0 - smooth) * p1 / 8.0 + smooth * p1)).abs() < 1e-15);
        let back = ModelConfig::from_hf_json(&c.to_hf_json(), Path::new("x")).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn missing_field_names_file_and_field() {
        let v = json!({"model_type":"llama","hidden_size":64,"num_attention_heads":4});
        let e = ModelConfig::from_hf_json(&v, Path::new("/m/config.json")).unwrap_err();
        let s = format!("{e:#}");
        assert!(
            s.contains("/m/config.json") && s.contains("intermediate_size")
                || s.contains("vocab_size"),
            "{s}"
        );
        let v = json!({"model_type":"gpt_neox"});
        let s = format!(
            "{:#}",
            ModelConfig::from_hf_json(&v, Path::new("c.json")).unwrap_err()
        );
        assert!(
            s.contains("unsupported architecture") && s.contains("gpt_neox"),
            "{s}"
        );
    }
}
