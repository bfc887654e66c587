//! Logits of the tiny transformers-5 checkpoints (Llama, Llama-3 rope scaling, Qwen2, Qwen3)
//! against the PyTorch values in test-data/reference/tiny/*/reference.json.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};

pub fn test_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-data")
}

fn check(name: &str) {
    let dir = test_data().join("reference/tiny").join(name);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let m = egi_model::load(dir.to_str().unwrap(), DType::F32, &Device::Cpu).unwrap();
    let ids: Vec<u32> = r["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let logits = m
        .model
        .forward(
            &Tensor::new(ids.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap(),
        )
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let want = r["logits"].as_array().unwrap();
    assert_eq!(want.len(), ids.len());
    let mut max_err = 0f64;
    for (row, wrow) in logits.iter().zip(want) {
        let wrow = wrow.as_array().unwrap();
        assert_eq!(row.len(), wrow.len());
        for (a, b) in row.iter().zip(wrow) {
            max_err = max_err.max((*a as f64 - b.as_f64().unwrap()).abs());
        }
    }
    println!("{name}: max abs logit error {max_err:.2e}");
    assert!(max_err <= 1e-4, "{name}: max abs logit error {max_err}");
    // Per-token logprob / entropy of the fixture, through the scoring path.
    let n_prompt = r["n_prompt"].as_u64().unwrap() as usize;
    let s = egi_model::score::score_ids(&m.model, &ids, n_prompt).unwrap();
    for (got, want) in s.iter().zip(r["tokens"].as_array().unwrap()) {
        assert_eq!(got.pos as u64, want["pos"].as_u64().unwrap());
        assert!((got.logprob - want["logprob"].as_f64().unwrap()).abs() < 1e-4);
        assert!((got.entropy - want["entropy"].as_f64().unwrap()).abs() < 1e-4);
        assert!((got.logit - want["logit"].as_f64().unwrap()).abs() < 1e-4);
    }
}

#[test]
fn tiny_llama_logits_match_pytorch() {
    check("llama");
}

#[test]
fn tiny_llama3_rope_scaling_logits_match_pytorch() {
    check("llama3-rope-scaling");
}

#[test]
fn tiny_qwen2_logits_match_pytorch() {
    check("qwen2");
}

#[test]
fn tiny_qwen3_logits_match_pytorch() {
    check("qwen3");
}
