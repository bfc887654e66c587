//! Bad checkpoints give one-line errors naming the file and the problem, never a panic.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

fn tiny(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/reference/tiny")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn load_err(p: &Path) -> String {
    match egi_model::load(p.to_str().unwrap(), DType::F32, &Device::Cpu) {
        Ok(_) => panic!("{} loaded, expected an error", p.display()),
        Err(e) => {
            let s = format!("{e:#}");
            assert!(!s.contains('\n'), "error is not one line: {s}");
            s
        }
    }
}

#[test]
fn truncated_gguf() {
    let src = egi_model::source::default_model_file().unwrap();
    let bytes = std::fs::read(&src).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Cut in the tensor data, and cut inside the header.
    for (name, n) in [("data.gguf", bytes.len() / 2), ("header.gguf", 4096)] {
        let p = tmp.path().join(name);
        std::fs::write(&p, &bytes[..n]).unwrap();
        let e = load_err(&p);
        assert!(e.contains(p.to_str().unwrap()), "{e}");
        assert!(
            e.contains("truncated") || e.contains("not a valid GGUF"),
            "{e}"
        );
    }
}

#[test]
fn corrupt_gguf_and_foreign_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.gguf");
    let mut b = b"GGUF".to_vec();
    b.extend(std::iter::repeat_n(0xABu8, 5000));
    std::fs::write(&p, &b).unwrap();
    let e = load_err(&p);
    assert!(
        e.contains("bad.gguf") && e.contains("not a valid GGUF"),
        "{e}"
    );
    let p = tmp.path().join("notes.txt");
    std::fs::write(&p, "hello").unwrap();
    let e = load_err(&p);
    assert!(
        e.contains("notes.txt") && e.contains("not a GGUF file"),
        "{e}"
    );
    let e = load_err(&tmp.path().join("missing.gguf"));
    assert!(e.contains("no such file"), "{e}");
}

#[test]
fn truncated_and_corrupt_safetensors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("m");
    copy_dir(&tiny("llama"), &d);
    let st = d.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() - 100]).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("model.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );
    std::fs::write(&st, b"\xff\xff\xff\xff\xff\xff\xff\x7fjunk").unwrap();
    let e = load_err(&d);
    assert!(e.contains("model.safetensors"), "{e}");
    std::fs::remove_file(&st).unwrap();
    let e = load_err(&d);
    assert!(e.contains("no model.safetensors"), "{e}");
}

#[test]
fn config_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("m");
    copy_dir(&tiny("qwen3"), &d);
    let cfg_path = d.join("config.json");
    let orig: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();

    let mut c = orig.clone();
    c["model_type"] = "gpt_neox".into();
    std::fs::write(&cfg_path, c.to_string()).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("config.json")
            && e.contains("unsupported architecture")
            && e.contains("gpt_neox"),
        "{e}"
    );

    let mut c = orig.clone();
    c.as_object_mut().unwrap().remove("num_hidden_layers");
    std::fs::write(&cfg_path, c.to_string()).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("config.json") && e.contains("num_hidden_layers"),
        "{e}"
    );

    let mut c = orig.clone();
    c["hidden_size"] = 65.into();
    std::fs::write(&cfg_path, c.to_string()).unwrap();
    let e = load_err(&d);
    assert!(e.contains("has shape"), "{e}");

    std::fs::write(&cfg_path, "{ not json").unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("config.json") && e.contains("not valid JSON"),
        "{e}"
    );

    std::fs::remove_file(&cfg_path).unwrap();
    let e = load_err(&d);
    assert!(e.contains("no config.json"), "{e}");
}

#[test]
fn missing_tokenizer_is_reported_when_text_is_needed() {
    let m = egi_model::load(tiny("llama").to_str().unwrap(), DType::F32, &Device::Cpu).unwrap();
    let e = format!("{:#}", m.tokenizer().err().unwrap());
    assert!(
        e.contains("tiny/llama") && e.contains("tokenizer.json"),
        "{e}"
    );
}

#[test]
fn hub_id_without_network_fails_clearly() {
    let e = format!(
        "{:#}",
        egi_model::source::resolve("HuggingFaceTB/SmolLM2-135M-Instruct").unwrap_err()
    );
    assert!(e.contains("HuggingFaceTB/SmolLM2-135M-Instruct"), "{e}");
}
