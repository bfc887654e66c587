//! Loading a model and its tokenizer from any `--model` source, and saving one back as a
//! Hugging Face directory.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use serde_json::{json, Value};

use crate::config::{ids_of, ModelConfig};
use crate::model::Transformer;
use crate::source::{resolve, ModelSource};
use crate::tokenizer::Tokenizer;
use crate::weights;

/// Sampling defaults a checkpoint ships (generation_config.json); flags override them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationDefaults {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub eos_token_ids: Vec<u32>,
}

pub struct LoadedModel {
    pub model: Transformer,
    pub tokenizer: Option<Tokenizer>,
    pub source: ModelSource,
    pub generation: GenerationDefaults,
}

impl LoadedModel {
    /// The tokenizer, or an error naming the source when the checkpoint has none.
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().with_context(|| {
            format!(
                "{}: this model has no tokenizer (tokenizer.json); add one to the directory",
                self.source.path().display()
            )
        })
    }

    /// Every id that ends generation: config, generation_config and tokenizer together.
    pub fn eos_ids(&self) -> Vec<u32> {
        let mut ids = self.model.cfg.eos_token_ids.clone();
        ids.extend(&self.generation.eos_token_ids);
        if let Some(t) = &self.tokenizer {
            ids.extend(&t.eos_ids);
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Load `spec` (GGUF file, HF directory, `default`, or hub id) with weights in `dtype`.
pub fn load(spec: &str, dtype: DType, device: &Device) -> Result<LoadedModel> {
    let src = resolve(spec)?;
    load_source(src, dtype, device)
}

pub fn load_source(src: ModelSource, dtype: DType, device: &Device) -> Result<LoadedModel> {
    match &src {
        ModelSource::Gguf(path) => {
            let (mut file, content) = weights::read_gguf_content(path)?;
            let mut cfg = weights::gguf_config(&content, path)?;
            let w = weights::load_gguf_tensors(&mut file, &content, &mut cfg, path, device)?;
            let tokenizer = Some(Tokenizer::from_gguf(&content, path)?);
            let model =
                Transformer::from_weights(cfg, w, dtype, device, &path.display().to_string())?;
            Ok(LoadedModel {
                model,
                tokenizer,
                source: src.clone(),
                generation: GenerationDefaults::default(),
            })
        }
        ModelSource::HfDir(dir) => {
            let cfg_path = dir.join("config.json");
            if !cfg_path.is_file() {
                bail!(
                    "{}: no config.json; a Hugging Face model directory needs config.json, model.safetensors and tokenizer.json",
                    dir.display()
                );
            }
            let cfg = ModelConfig::from_hf_file(&cfg_path)?;
            let generation = read_generation_config(&dir.join("generation_config.json"))?;
            let w = weights::load_safetensors_dir(dir, device)?;
            let tokenizer = if dir.join("tokenizer.json").is_file() {
                Some(Tokenizer::from_hf_dir(dir)?)
            } else {
                None
            };
            let model =
                Transformer::from_weights(cfg, w, dtype, device, &dir.display().to_string())?;
            Ok(LoadedModel {
                model,
                tokenizer,
                source: src.clone(),
                generation,
            })
        }
    }
}

fn read_generation_config(path: &Path) -> Result<GenerationDefaults> {
    if !path.is_file() {
        return Ok(GenerationDefaults::default());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    Ok(GenerationDefaults {
        temperature: v.get("temperature").and_then(|x| x.as_f64()),
        top_p: v.get("top_p").and_then(|x| x.as_f64()),
        top_k: v.get("top_k").and_then(|x| x.as_u64()).map(|x| x as usize),
        eos_token_ids: ids_of(v.get("eos_token_id")),
    })
}

/// Write the model as a Hugging Face directory (config.json, model.safetensors,
/// generation_config.json, and the tokenizer files when there is a tokenizer). The directory
/// is built beside the target and renamed into place, so a crash leaves no half-written model.
pub fn save_hf_dir(
    model: &Transformer,
    tokenizer: Option<&Tokenizer>,
    generation: &GenerationDefaults,
    dir: &Path,
) -> Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("{}: cannot create", parent.display()))?;
    let name = dir
        .file_name()
        .with_context(|| format!("{}: not a directory name", dir.display()))?
        .to_string_lossy();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    let write = || -> Result<()> {
        let cfg = &model.cfg;
        let file = |n: &str| tmp.join(n);
        let cannot = |p: std::path::PathBuf| move || format!("{}: cannot write", p.display());
        std::fs::write(
            file("config.json"),
            serde_json::to_string_pretty(&cfg.to_hf_json())?,
        )
        .with_context(cannot(file("config.json")))?;
        let mut gen = json!({});
        if let Some(b) = cfg.bos_token_id {
            gen["bos_token_id"] = json!(b);
        }
        let mut eos = cfg.eos_token_ids.clone();
        eos.extend(&generation.eos_token_ids);
        eos.dedup();
        if !eos.is_empty() {
            gen["eos_token_id"] = if eos.len() == 1 {
                json!(eos[0])
            } else {
                json!(eos)
            };
        }
        if let Some(t) = generation.temperature {
            gen["temperature"] = json!(t);
            gen["do_sample"] = json!(true);
        }
        if let Some(p) = generation.top_p {
            gen["top_p"] = json!(p);
        }
        if let Some(k) = generation.top_k {
            gen["top_k"] = json!(k);
        }
        std::fs::write(
            file("generation_config.json"),
            serde_json::to_string_pretty(&gen)?,
        )
        .with_context(cannot(file("generation_config.json")))?;
        // f32 on disk whatever the in-memory dtype: exact for f32 models, and what trainers
        // expect from a fine-tuned checkpoint.
        let tensors: std::collections::HashMap<String, candle_core::Tensor> = model
            .weights()
            .into_iter()
            .map(|(k, v)| Ok((k, v.to_dtype(DType::F32)?.contiguous()?)))
            .collect::<Result<_>>()?;
        candle_core::safetensors::save(&tensors, file("model.safetensors"))
            .with_context(cannot(file("model.safetensors")))?;
        if let Some(t) = tokenizer {
            t.save_hf(&tmp, cfg.max_position_embeddings)?;
        }
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.context(format!("{}: saving failed, nothing written", dir.display())));
    }
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &old)
            .with_context(|| format!("{}: cannot replace the existing directory", dir.display()))?;
    }
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("{}: cannot move into place", dir.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}
