//! `Transformer::load_state`: weights handed over by name give the logits of a model built
//! from them; a bad name or shape changes nothing; strict and tied-head rules.

use candle_core::{DType, Device, Tensor};
use egi_model::config::Arch;
use egi_model::testing::{random_weights, tiny_config, tiny_random};
use egi_model::Transformer;

fn logits(m: &Transformer) -> Vec<Vec<f32>> {
    let ids = Tensor::new(&[1u32, 5, 9, 2, 7], &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    m.forward(&ids)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap()
}

#[test]
fn loaded_weights_give_the_logits_of_a_model_built_from_them() {
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        let mut a = tiny_random(arch, DType::F32, 1).unwrap();
        let cfg = tiny_config(arch);
        let w = random_weights(&cfg, 2).unwrap();
        let b = Transformer::from_weights(cfg, w.clone(), DType::F32, &Device::Cpu, "b").unwrap();
        assert_ne!(logits(&a), logits(&b));
        let r = a.load_state(w, true).unwrap();
        assert!(r.missing.is_empty() && r.unexpected.is_empty(), "{r:?}");
        assert_eq!(logits(&a), logits(&b), "{arch:?}");
    }
}

#[test]
fn bad_shape_or_name_changes_nothing() {
    let mut a = tiny_random(Arch::Llama, DType::F32, 1).unwrap();
    let before = logits(&a);
    let mut w = random_weights(&tiny_config(Arch::Llama), 2).unwrap();
    let q = "model.layers.1.self_attn.q_proj.weight";
    let dims = w[q].dims().to_vec();
    w.insert(
        q.into(),
        Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap(),
    );
    let e = a.load_state(w.clone(), false).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{q}: shape [3, 4] given, this model's is {dims:?}")
    );
    assert_eq!(logits(&a), before, "all or none");

    // Strict: an unknown name or a missing weight is refused, naming it.
    let mut w = random_weights(&tiny_config(Arch::Llama), 2).unwrap();
    w.insert("model.layers.9.mlp.up.weight".into(), w[q].clone());
    let e = a.load_state(w.clone(), true).unwrap_err().to_string();
    assert!(
        e.contains("unexpected model.layers.9.mlp.up.weight; missing none"),
        "{e}"
    );
    w.remove("model.layers.9.mlp.up.weight");
    w.remove("model.norm.weight");
    let e = a.load_state(w.clone(), true).unwrap_err().to_string();
    assert!(
        e.contains("unexpected none; missing model.norm.weight"),
        "{e}"
    );
    assert_eq!(logits(&a), before);

    // Not strict: a subset loads, the rest keeps its values, unknown names are reported.
    let only: egi_model::weights::Weights = [(q.to_string(), w[q].clone())].into();
    let mut extra = only.clone();
    extra.insert("nope".into(), w[q].clone());
    let r = a.load_state(extra, false).unwrap();
    assert_eq!(r.unexpected, ["nope"]);
    assert_eq!(r.missing.len(), a.params().len() - 1);
    let got: Vec<f32> = a
        .param(q)
        .unwrap()
        .value
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let want: Vec<f32> = w[q].flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(got, want);
}

#[test]
fn tied_head_is_accepted_only_when_it_equals_the_embedding() {
    let mut a = tiny_random(Arch::Llama, DType::F32, 1).unwrap();
    assert!(a.cfg.tie_word_embeddings);
    let mut w = random_weights(&tiny_config(Arch::Llama), 2).unwrap();
    let embed = w["model.embed_tokens.weight"].clone();
    w.insert("lm_head.weight".into(), embed.clone());
    a.load_state(w.clone(), true).unwrap();
    w.insert("lm_head.weight".into(), (embed + 1.0).unwrap());
    let e = a.load_state(w, true).unwrap_err().to_string();
    assert!(e.starts_with("lm_head.weight: this model ties it"), "{e}");
}

#[test]
fn values_take_the_model_dtype() {
    let mut a = tiny_random(Arch::Llama, DType::BF16, 1).unwrap();
    let w = random_weights(&tiny_config(Arch::Llama), 2).unwrap();
    a.load_state(w, true).unwrap();
    assert!(a.params().iter().all(|p| p.value.dtype() == DType::BF16));
}
