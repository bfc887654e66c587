//! Pieces every subcommand shares: loading a model by `--model`, atomic file output, progress
//! bars, and the small `save` / `info` commands.

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::Result;
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

/// What a command says when its --out already holds the finished run it was asked for.
pub fn say_complete(out: &std::path::Path, what: &str) {
    eprintln!(
        "complete: {} already holds this run (same model, input and options): {what}; \
         nothing to do (--fresh recomputes it)",
        out.display()
    );
}
