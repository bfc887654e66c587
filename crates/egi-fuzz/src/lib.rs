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

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device};

/// A scratch directory for this process (in memory where /dev/shm exists).
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap_or_else(|_| tempfile::tempdir().expect("temp dir"))
        } else {
            tempfile::tempdir().expect("temp dir")
        }
    })
    .path()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("scratch file");
}

/// A tiny model directory in the scratch space: config.json (+ weights unless given).
fn model_dir(name: &str, weights: Option<&[u8]>) -> PathBuf {
    let dir = scratch().join(name);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let tiny = seeds::tiny_llama_dir();
    for f in ["config.json", "generation_config.json"] {
        if !dir.join(f).exists() {
            std::fs::copy(tiny.join(f), dir.join(f)).expect("tiny model file");
        }
    }
    match weights {
        Some(w) => write(&dir.join("model.safetensors"), w),
        None if !dir.join("model.safetensors").exists() => {
            std::fs::copy(
                tiny.join("model.safetensors"),
                dir.join("model.safetensors"),
            )
            .expect("tiny weights");
        }
        None => {}
    }
    dir
}

fn load(path: &Path) -> Option<egi_model::LoadedModel> {
    egi_model::load(path.to_str()?, DType::F32, &Device::Cpu).ok()
}

pub fn gguf(data: &[u8]) {
    let p = scratch().join("fuzz.gguf");
    write(&p, data);
    let _ = load(&p);
}

pub fn safetensors(data: &[u8]) {
    let dir = model_dir("safetensors", Some(data));
    let _ = load(&dir);
}

pub fn tokenizer(data: &[u8]) {
    let dir = model_dir("tokenizer", None);
    let (tok, cfg) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    write(&dir.join("tokenizer.json"), tok);
    match cfg {
        Some(c) => write(&dir.join("tokenizer_config.json"), c),
        None => {
            let _ = std::fs::remove_file(dir.join("tokenizer_config.json"));
        }
    }
    let Some(m) = load(&dir) else { return };
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
    let p = scratch().join("data.jsonl");
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
