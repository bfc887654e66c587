//! The hand-written training pass equals autograd: the same hidden states, and the same
//! gradient for every weight (autograd is itself checked against finite differences in
//! gradients.rs), on tiny random Llama, Qwen2 (biases, untied head) and Qwen3 (q/k norms)
//! models, in f64, over a packed row (a prefix and three blocks, one of them empty).

use candle_core::{DType, Device, Tensor};
use egi_model::pass::Pass;
use egi_model::testing::tiny_random;
use egi_model::{Arch, AttnInput};

const IDS: [u32; 11] = [5, 17, 3, 44, 9, 60, 2, 31, 12, 7, 50];
const PREFIX: usize = 4;
const BLOCKS: [usize; 3] = [3, 0, 4];

fn cotangent(t: usize, h: usize) -> Tensor {
    let c: Vec<f64> = (0..t * h)
        .map(|i| ((i * 7919) % 17) as f64 / 17.0 - 0.5)
        .collect();
    Tensor::from_vec(c, (t, h), &Device::Cpu).unwrap()
}

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let a: Vec<f64> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f64> = b.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-12f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f64::max)
}

fn check(arch: Arch, trainable: &dyn Fn(&str) -> bool) {
    let dev = Device::Cpu;
    let mut m = tiny_random(arch, DType::F64, 3).unwrap();
    let vars = m.set_trainable(trainable).unwrap();
    assert!(!vars.is_empty());
    let attn = AttnInput::packed(PREFIX, &BLOCKS, DType::F64, &dev).unwrap();
    let ids = Tensor::new(&IDS, &dev).unwrap().unsqueeze(0).unwrap();
    let hidden = m.forward_hidden(&ids, &attn).unwrap().squeeze(0).unwrap();
    let c = cotangent(IDS.len(), m.cfg.hidden_size);
    let store = (&hidden * &c)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();

    let pass = Pass::record(&m, &IDS, &attn).unwrap();
    let err = max_rel(&pass.hidden, &hidden);
    assert!(err < 1e-12, "{arch:?}: hidden states differ by {err:e}");
    // An untied LM head's gradient belongs to the caller (it knows the loss).
    let head = |i: usize| m.params()[i].name == "lm_head.weight";
    let want = |i: usize| m.params()[i].var.is_some() && !head(i);
    let grads = pass.backward(&m, &c, &want).unwrap();
    for (i, p) in m.params().iter().enumerate() {
        match (&p.var, &grads[i]) {
            (Some(_), None) if head(i) => {}
            (Some(v), Some(g)) => {
                let auto = store.get(v).expect("autograd gradient");
                let err = max_rel(g, auto);
                assert!(
                    err < 1e-10,
                    "{arch:?} {}: gradient differs by {err:e}",
                    p.name
                );
            }
            (None, None) => {}
            (Some(_), None) => panic!("{arch:?} {}: trainable but no gradient", p.name),
            (None, Some(_)) => panic!("{arch:?} {}: frozen but got a gradient", p.name),
        }
    }
}

#[test]
fn every_weight_gradient_equals_autograd() {
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        check(arch, &|_| true);
    }
}

#[test]
fn attention_only_gradients_equal_autograd() {
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        check(arch, &|n| n.contains(".self_attn."));
    }
}

#[test]
fn top_layer_only_gradients_equal_autograd() {
    // The backward stops below the last layer: the layers under it get no cotangent.
    check(Arch::Llama, &|n| n.contains("layers.1."));
}
