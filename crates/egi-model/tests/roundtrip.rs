//! Saving: a model written by egi as a Hugging Face directory loads back with identical logits
//! and tokenization (the default GGUF model and a tiny Qwen2 checkpoint).

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};

fn logits(m: &egi_model::Transformer, ids: &[u32]) -> Vec<Vec<f32>> {
    m.forward(
        &Tensor::new(ids, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap(),
    )
    .unwrap()
    .squeeze(0)
    .unwrap()
    .to_vec2()
    .unwrap()
}

#[test]
fn default_model_saved_and_reloaded_gives_identical_logits() {
    let a = egi_model::load("default", DType::F32, &Device::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("smollm2-hf");
    egi_model::save_hf_dir(&a.model, a.tokenizer.as_ref(), &a.generation, &out).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let b = egi_model::load(out.to_str().unwrap(), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(a.model.cfg, b.model.cfg);
    let text = "Tom has 3 bags with 4 apples each.\nHow many? 12 apples!";
    let ta = a.tokenizer.as_ref().unwrap();
    let tb = b.tokenizer.as_ref().unwrap();
    let ids = ta.encode(text, false).unwrap();
    assert_eq!(ids, tb.encode(text, false).unwrap());
    assert_eq!(a.eos_ids(), b.eos_ids());
    assert_eq!(ta.chat_template, tb.chat_template);
    assert_eq!(
        logits(&a.model, &ids),
        logits(&b.model, &ids),
        "logits differ after reload"
    );
}

#[test]
fn tiny_checkpoint_round_trips_and_save_replaces_atomically() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-data/reference/tiny/qwen2");
    let a = egi_model::load(dir.to_str().unwrap(), DType::F32, &Device::Cpu).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    egi_model::save_hf_dir(&a.model, None, &a.generation, &out).unwrap();
    // Saving again over an existing directory replaces it whole.
    egi_model::save_hf_dir(&a.model, None, &a.generation, &out).unwrap();
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "leftover temporary directories: {names:?}");
    let b = egi_model::load(out.to_str().unwrap(), DType::F32, &Device::Cpu).unwrap();
    let ids = [3u32, 9, 27, 4, 100, 55];
    assert_eq!(logits(&a.model, &ids), logits(&b.model, &ids));
}
