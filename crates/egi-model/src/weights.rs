//! Reading checkpoint tensors into Hugging Face names: safetensors (single file or sharded with
//! an index) and GGUF (dequantized to f32, llama.cpp's q/k row permutation undone).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::config::{Arch, Llama3RopeScaling, ModelConfig};

pub type Weights = HashMap<String, Tensor>;

/// candle errors can carry a backtrace after the message; keep messages to one line.
pub(crate) fn first_line(e: impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Tensors of a Hugging Face directory: `model.safetensors`, or the shards listed in
/// `model.safetensors.index.json`.
pub fn load_safetensors_dir(dir: &Path, device: &Device) -> Result<Weights> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<std::path::PathBuf> = if single.exists() {
        vec![single]
    } else if index.exists() {
        let text = std::fs::read_to_string(&index)
            .with_context(|| format!("{}: cannot read", index.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", index.display()))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .with_context(|| format!("{}: missing object field \"weight_map\"", index.display()))?;
        let names: BTreeSet<&str> = map.values().filter_map(|f| f.as_str()).collect();
        names.into_iter().map(|f| dir.join(f)).collect()
    } else {
        bail!(
            "{}: no model.safetensors or model.safetensors.index.json in this directory",
            dir.display()
        )
    };
    let mut out = Weights::new();
    for f in files {
        if !f.exists() {
            bail!("{}: shard listed in the index is missing", f.display());
        }
        let ts = candle_core::safetensors::load(&f, device).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a valid safetensors file ({})",
                f.display(),
                first_line(e)
            )
        })?;
        out.extend(ts);
    }
    Ok(out)
}

/// Read the GGUF header (metadata and tensor table). Truncated or foreign files fail here with
/// the path in the message.
pub fn read_gguf_content(path: &Path) -> Result<(File, gguf_file::Content)> {
    let mut f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let content = gguf_file::Content::read(&mut f).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a valid GGUF file ({})",
            path.display(),
            first_line(e)
        )
    })?;
    // The header can be intact while the data is cut off: check the tensor table against the size.
    let len = f.metadata()?.len();
    for (name, info) in &content.tensor_infos {
        // Checked arithmetic: a corrupt shape must not overflow into a small size (fuzzing
        // found one that then made dequantizing abort).
        let elems = info
            .shape
            .dims()
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        let (block, unit) = (
            info.ggml_dtype.block_size() as u64,
            info.ggml_dtype.type_size() as u64,
        );
        let end = elems
            .and_then(|e| (e / block).checked_mul(unit))
            .and_then(|b| b.checked_add(info.offset))
            .and_then(|b| b.checked_add(content.tensor_data_offset));
        match end {
            Some(end) if end <= len => {}
            Some(end) => bail!(
                "{}: file is truncated (tensor {name} ends at byte {end}, file has {len}); download it again",
                path.display()
            ),
            None => bail!(
                "{}: file is truncated or corrupt (tensor {name} has the impossible shape {:?}); download it again",
                path.display(),
                info.shape.dims()
            ),
        }
    }
    Ok((f, content))
}

fn md_u32(c: &gguf_file::Content, key: &str, path: &Path) -> Result<usize> {
    let v = c
        .metadata
        .get(key)
        .with_context(|| format!("{}: GGUF metadata key \"{key}\" is missing", path.display()))?;
    v.to_u32()
        .map(|x| x as usize)
        .or_else(|_| v.to_u64().map(|x| x as usize))
        .map_err(|e| anyhow::anyhow!("{}: GGUF key \"{key}\": {}", path.display(), first_line(e)))
}

fn md_f64(c: &gguf_file::Content, key: &str, path: &Path) -> Result<Option<f64>> {
    match c.metadata.get(key) {
        None => Ok(None),
        Some(v) => v
            .to_f32()
            .map(|x| Some(x as f64))
            .or_else(|_| v.to_f64().map(Some))
            .map_err(|e| {
                anyhow::anyhow!("{}: GGUF key \"{key}\": {}", path.display(), first_line(e))
            }),
    }
}

/// Model configuration from GGUF metadata.
pub fn gguf_config(c: &gguf_file::Content, path: &Path) -> Result<ModelConfig> {
    let arch_s = c
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .with_context(|| {
            format!(
                "{}: GGUF key \"general.architecture\" is missing",
                path.display()
            )
        })?;
    let arch = Arch::from_model_type(&arch_s).with_context(|| {
        format!(
            "{}: unsupported architecture \"{arch_s}\" (egi runs llama, qwen2, qwen3)",
            path.display()
        )
    })?;
    let k = |s: &str| format!("{arch_s}.{s}");
    let hidden = md_u32(c, &k("embedding_length"), path)?;
    let heads = md_u32(c, &k("attention.head_count"), path)?;
    let kv_heads = md_u32(c, &k("attention.head_count_kv"), path).unwrap_or(heads);
    let head_dim = md_u32(c, &k("attention.key_length"), path).unwrap_or(hidden / heads);
    let vocab = match md_u32(c, &k("vocab_size"), path) {
        Ok(v) => v,
        Err(_) => c
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0])
            .with_context(|| format!("{}: no token_embd.weight tensor", path.display()))?,
    };
    let token_id = |key: &str| c.metadata.get(key).and_then(|v| v.to_u32().ok());
    let mut eos = vec![];
    if let Some(e) = token_id("tokenizer.ggml.eos_token_id") {
        eos.push(e);
    }
    if let Some(e) = token_id("tokenizer.ggml.eot_token_id") {
        if !eos.contains(&e) {
            eos.push(e);
        }
    }
    Ok(ModelConfig {
        arch,
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: md_u32(c, &k("feed_forward_length"), path)?,
        num_layers: md_u32(c, &k("block_count"), path)?,
        num_heads: heads,
        num_kv_heads: kv_heads,
        head_dim,
        rms_norm_eps: md_f64(c, &k("attention.layer_norm_rms_epsilon"), path)?.with_context(
            || {
                format!(
                    "{}: GGUF key \"{arch_s}.attention.layer_norm_rms_epsilon\" is missing",
                    path.display()
                )
            },
        )?,
        rope_theta: md_f64(c, &k("rope.freq_base"), path)?.unwrap_or(10000.0),
        rope_scaling: None,
        max_position_embeddings: md_u32(c, &k("context_length"), path).unwrap_or(4096),
        tie_word_embeddings: !c.tensor_infos.contains_key("output.weight"),
        attention_bias: c.tensor_infos.contains_key("blk.0.attn_q.bias"),
        qk_norm: arch == Arch::Qwen3,
        bos_token_id: token_id("tokenizer.ggml.bos_token_id"),
        eos_token_ids: eos,
    })
}

/// llama.cpp's name for each Hugging Face tensor name.
fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (part, kind) = rest.rsplit_once('.')?;
    let hf = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Undo llama.cpp's `permute` of q/k rows for Llama (it interleaves the two rotary halves of
/// every head so that its rope kernel can work on adjacent pairs).
fn unpermute(w: &Tensor, n_head: usize) -> Result<Tensor> {
    let dims = w.dims().to_vec();
    let out = dims[0];
    let rest: usize = dims[1..].iter().product();
    let hd = out / n_head;
    Ok(w.reshape((n_head, hd / 2, 2, rest))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

/// All tensors of a GGUF file, dequantized to f32 (trainable precision) under HF names.
pub fn load_gguf_tensors(
    file: &mut File,
    c: &gguf_file::Content,
    cfg: &mut ModelConfig,
    path: &Path,
    device: &Device,
) -> Result<Weights> {
    let mut out = Weights::new();
    for name in c.tensor_infos.keys() {
        if name == "rope_freqs.weight" {
            let t = c
                .tensor(file, name, device)
                .and_then(|q| q.dequantize(device))
                .map_err(|e| {
                    anyhow::anyhow!("{}: tensor {name}: {}", path.display(), first_line(e))
                })?;
            cfg.rope_scaling = Some(llama3_from_freq_factors(&t, cfg, path)?);
            continue;
        }
        let Some(hf) = hf_name(name) else {
            bail!(
                "{}: unexpected tensor \"{name}\" for architecture {}",
                path.display(),
                cfg.arch.model_type()
            );
        };
        let q = c.tensor(file, name, device).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot read tensor {name} ({})",
                path.display(),
                first_line(e)
            )
        })?;
        let mut t = q
            .dequantize(device)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: cannot dequantize {name} ({})",
                    path.display(),
                    first_line(e)
                )
            })?
            .to_dtype(DType::F32)?;
        if cfg.arch == Arch::Llama {
            if name.contains("attn_q.") {
                t = unpermute(&t, cfg.num_heads)?;
            } else if name.contains("attn_k.") {
                t = unpermute(&t, cfg.num_kv_heads)?;
            }
        }
        out.insert(hf, t);
    }
    Ok(out)
}

/// llama.cpp stores Llama-3.1 rope scaling as a per-frequency divisor tensor; recover the
/// standard parameters and check that they reproduce it exactly.
fn llama3_from_freq_factors(
    t: &Tensor,
    cfg: &ModelConfig,
    path: &Path,
) -> Result<Llama3RopeScaling> {
    let factors: Vec<f32> = t.flatten_all()?.to_vec1()?;
    let max = factors.iter().cloned().fold(0f32, f32::max) as f64;
    for orig in [8192usize, 4096, 2048, 32768] {
        let s = Llama3RopeScaling {
            factor: max,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: orig,
        };
        let mut c = cfg.clone();
        c.rope_scaling = None;
        let plain = c.rope_inv_freq();
        c.rope_scaling = Some(s.clone());
        let scaled = c.rope_inv_freq();
        let ok = plain
            .iter()
            .zip(&scaled)
            .zip(&factors)
            .all(|((p, s), f)| ((p / s) - *f as f64).abs() < 1e-3 * (*f as f64));
        if ok && factors.len() == plain.len() {
            return Ok(s);
        }
    }
    bail!(
        "{}: rope_freqs.weight does not match Llama-3 rope scaling; this rope variant is not supported",
        path.display()
    )
}
