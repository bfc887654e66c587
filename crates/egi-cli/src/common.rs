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

/// A progress bar on a terminal; elsewhere (a log file, nohup, CI), where indicatif draws
/// nothing, a plain line every `EGI_PROGRESS_EVERY` seconds (default 30; 0: none) with the
/// items done, the rate and the ETA, and one when the work ends.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("static template"),
    );
    pb.set_message(what.to_string());
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        let every = std::env::var("EGI_PROGRESS_EVERY")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(30.0);
        if every > 0.0 && every.is_finite() {
            plain_progress_lines(pb.downgrade(), what.to_string(), every);
        }
    }
    pb
}

/// The thread behind [`progress`]'s plain lines: it ends with the bar (finished or dropped).
fn plain_progress_lines(weak: indicatif::WeakProgressBar, what: String, every: f64) {
    let line = move |pb: &ProgressBar, end: bool| {
        let (pos, len) = (pb.position(), pb.length().unwrap_or(0));
        let pct = if len > 0 {
            100.0 * pos as f64 / len as f64
        } else {
            0.0
        };
        let secs = pb.elapsed().as_secs_f64();
        if end {
            eprintln!("{what}: {pos}/{len} done in {}", hms(secs));
        } else {
            let rate = if secs > 0.0 { pos as f64 / secs } else { 0.0 };
            let eta = if rate > 0.0 {
                hms(len.saturating_sub(pos) as f64 / rate)
            } else {
                "?".into()
            };
            eprintln!(
                "{what}: {pos}/{len} ({pct:.0}%), {rate:.3}/s, elapsed {}, eta {eta}",
                hms(secs)
            );
        }
    };
    std::thread::spawn(move || {
        let step = std::time::Duration::from_millis(100);
        let mut last = std::time::Instant::now();
        loop {
            std::thread::sleep(step);
            let Some(pb) = weak.upgrade() else { return };
            if pb.is_finished() {
                line(&pb, true);
                return;
            }
            if last.elapsed().as_secs_f64() >= every {
                line(&pb, false);
                last = std::time::Instant::now();
            }
        }
    });
}

/// Seconds as 1h02m03s / 2m03s / 3s.
fn hms(secs: f64) -> String {
    let s = secs.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
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

/// `egi fingerprint merge` and `egi eval merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' output directories (their --out), in any order.
    #[arg(required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged outputs go.
    #[arg(long)]
    pub out: PathBuf,
}
