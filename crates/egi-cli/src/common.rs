//! Pieces every subcommand shares: loading a model by `--model`, atomic file output, progress
//! bars, and the small `save` / `info` commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use egi_model::LoadedModel;
use indicatif::{ProgressBar, ProgressStyle};

/// The global `--device` and `--dtype`, as given (checked when a model is loaded, so that
/// commands that compute nothing never fail on them).
static COMPUTE: OnceLock<(String, String)> = OnceLock::new();

pub fn set_compute(device: &str, dtype: &str) {
    let _ = COMPUTE.set((device.to_string(), dtype.to_string()));
}

/// The device and dtype models are loaded on.
pub fn compute() -> Result<(Device, DType)> {
    let (dev, dt) = COMPUTE
        .get()
        .cloned()
        .unwrap_or_else(|| ("auto".into(), "f32".into()));
    Ok((
        egi_model::select_device(&dev)?,
        egi_model::parse_dtype(&dt)?,
    ))
}

pub fn load_model(spec: &str) -> Result<LoadedModel> {
    let t = std::time::Instant::now();
    let (device, dtype) = compute()?;
    let m = egi_model::load(spec, dtype, &device)?;
    tracing::info!(
        "loaded {} ({} layers) from {} on {} ({:?}) in {:.1}s",
        m.model.cfg.arch.model_type(),
        m.model.cfg.num_layers,
        m.source.path().display(),
        egi_model::device_name(&device),
        dtype,
        t.elapsed().as_secs_f64()
    );
    Ok(m)
}

pub use egi_report::write_atomic;

pub fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("static template"),
    );
    pb.set_message(what.to_string());
    pb
}

#[derive(clap::Args)]
pub struct SaveArgs {
    /// Model to read (GGUF file, HF directory, `default`, or hub id).
    #[arg(long, default_value = "default")]
    pub model: String,
    /// Directory to write (config.json, model.safetensors, tokenizer.json, ...). Replaced
    /// atomically if it exists.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn save(a: SaveArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    egi_model::save_hf_dir(&m.model, m.tokenizer.as_ref(), &m.generation, &a.out)?;
    println!("wrote {}", a.out.display());
    Ok(())
}

#[derive(clap::Args)]
pub struct InfoArgs {
    #[arg(long, default_value = "default")]
    pub model: String,
}

pub fn info(a: InfoArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let c = &m.model.cfg;
    let (body, emb) = c.n_params();
    let v = serde_json::json!({
        "source": m.source.path(),
        "config": c.to_hf_json(),
        "params_non_embedding": body,
        "params_embedding": emb,
        "eos_token_ids": m.eos_ids(),
        "chat_template": m.tokenizer.as_ref().map(|t| t.chat_template.is_some()),
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// Crash-safe progress of a long run: finished records are appended, one JSON line each, to
/// `<dir>/<stem>.partial.jsonl`, beside `<dir>/<stem>.key.partial.json` holding the settings
/// they were made with. Opening again resumes (same settings) or refuses (other settings,
/// unless `fresh`); a torn last line from a crash is dropped.
pub struct PartialRows {
    file: std::fs::File,
    path: PathBuf,
    key_path: PathBuf,
}

impl PartialRows {
    /// Returns the checkpoint and the records already done.
    pub fn open(
        dir: &Path,
        stem: &str,
        key: &serde_json::Value,
        fresh: bool,
    ) -> Result<(PartialRows, Vec<serde_json::Value>)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let path = dir.join(format!("{stem}.partial.jsonl"));
        let key_path = dir.join(format!("{stem}.key.partial.json"));
        if fresh {
            let _ = std::fs::remove_file(&path);
        }
        let mut done = vec![];
        if path.exists() {
            let prev: serde_json::Value = std::fs::read_to_string(&key_path)
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(serde_json::Value::Null);
            if &prev != key {
                anyhow::bail!(
                    "{}: an interrupted run with other settings is here; rerun with --fresh to discard it, or use another --out",
                    dir.display()
                );
            }
            for (i, l) in std::fs::read_to_string(&path)?.lines().enumerate() {
                match serde_json::from_str(l) {
                    Ok(v) => done.push(v),
                    Err(_) => tracing::warn!(
                        "{}:{}: incomplete line dropped (interrupted write)",
                        path.display(),
                        i + 1
                    ),
                }
            }
        }
        write_atomic(&key_path, serde_json::to_string_pretty(key)?.as_bytes())?;
        // Rewrite without any torn line, then append from there.
        let text: String = done.iter().map(|v| format!("{v}\n")).collect();
        write_atomic(&path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new().append(true).open(&path)?;
        Ok((
            PartialRows {
                file,
                path,
                key_path,
            },
            done,
        ))
    }

    /// Replace the file by exactly these records (e.g. to drop incomplete groups), then keep
    /// appending to it.
    pub fn rewrite(&mut self, records: &[serde_json::Value]) -> Result<()> {
        let text: String = records.iter().map(|v| format!("{v}\n")).collect();
        write_atomic(&self.path, text.as_bytes())?;
        self.file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }

    /// Append records and flush them to disk.
    pub fn append(&mut self, records: &[serde_json::Value]) -> Result<()> {
        let text: String = records.iter().map(|v| format!("{v}\n")).collect();
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.flush())
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }

    /// The run is complete: its final outputs are written, the checkpoint goes.
    pub fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.key_path);
    }
}
