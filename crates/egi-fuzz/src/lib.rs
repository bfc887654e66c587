//! Fuzz targets for every parser of outside input. Each takes arbitrary bytes and must return
//! without a panic, a hang or an unbounded allocation, whatever the bytes; errors are fine.
//!
//! * [`gguf`]: a GGUF file, loaded as a model (header, metadata, tokenizer, tensor table, data).
//! * [`safetensors`]: `model.safetensors` of a Hugging Face directory (header, tensor table).
//! * [`tokenizer`]: `tokenizer.json` and `tokenizer_config.json` (split at the first `0xFF`
//!   byte), loaded with a model, then its chat template rendered and a text encoded.
//! * [`jsonl`]: a JSONL data file, read as problems, as SFT pairs and as records.
//! * [`verify`]: a response and a gold (split at the first newline), verified.
//!
//! `fuzz/` runs them under libFuzzer (`cargo +nightly fuzz run gguf`); `tests/bounded.rs`
//! runs each from [`seeds`] with random mutations for a few seconds in the test suite.

pub mod seeds;

use std::path::Path;

use candle_core::{DType, Device};

/// A scratch directory for one input (in memory where /dev/shm exists), removed when the
/// input is done.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("temp dir")
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("scratch file");
}

/// The tiny model's config files (and weights unless given) in `dir`.
fn model_dir(dir: &Path, weights: Option<&[u8]>) {
    let tiny = seeds::tiny_llama_dir();
    for f in ["config.json", "generation_config.json"] {
        std::fs::copy(tiny.join(f), dir.join(f)).expect("tiny model file");
    }
    match weights {
        Some(w) => write(&dir.join("model.safetensors"), w),
        None => {
            std::fs::copy(
                tiny.join("model.safetensors"),
                dir.join("model.safetensors"),
            )
            .expect("tiny weights");
        }
    }
}

fn load(path: &Path) -> Option<egi_model::LoadedModel> {
    egi_model::load(path.to_str()?, DType::F32, &Device::Cpu).ok()
}

pub fn gguf(data: &[u8]) {
    let d = scratch();
    let p = d.path().join("fuzz.gguf");
    write(&p, data);
    let _ = load(&p);
}

pub fn safetensors(data: &[u8]) {
    let d = scratch();
    model_dir(d.path(), Some(data));
    let _ = load(d.path());
}

pub fn tokenizer(data: &[u8]) {
    let d = scratch();
    let dir = d.path();
    model_dir(dir, None);
    let (tok, cfg) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    write(&dir.join("tokenizer.json"), tok);
    if let Some(c) = cfg {
        write(&dir.join("tokenizer_config.json"), c);
    }
    let Some(m) = load(dir) else { return };
    let Some(t) = m.tokenizer.as_ref() else {
        return;
    };
    let msgs = [
        egi_model::chat::ChatMessage::new("system", "Be brief."),
        egi_model::chat::ChatMessage::new("user", "What is 2 + 3?"),
    ];
    if let Ok(text) = t.apply_chat_template(&msgs, true) {
        let _ = t.encode(&text, true);
    }
    let _ = t.encode_with_offsets("A train goes 80 km in 2 hours.\n\\boxed{40}");
}

pub fn jsonl(data: &[u8]) {
    let d = scratch();
    let p = d.path().join("data.jsonl");
    write(&p, data);
    let src = egi_eval::data::DataSource::File(p);
    let _ = egi_eval::data::load_problems(&src, None);
    let _ = egi_eval::data::records(&src);
    let _ = egi_rl::sft::read_pairs(&src, Some(64));
}

pub fn verify(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (a, g) = text.split_once('\n').unwrap_or((&text, ""));
    let o = egi_verify::Options::default();
    let _ = egi_verify::verify(a, g, &o);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(g) {
        let _ = egi_verify::gold_from_record(&v);
    }
}
