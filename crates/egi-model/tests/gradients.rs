//! Backward through the differentiable path equals central finite differences (f64), for every
//! weight of tiny random Llama, Qwen2 and Qwen3 models; padding changes nothing; the KV-cache
//! inference path equals the teacher-forced path.

use candle_core::{DType, Device, Tensor, D};
use egi_model::testing::tiny_random;
use egi_model::{Arch, AttnInput, KvCache, Transformer};

const IDS: [u32; 9] = [5, 17, 3, 44, 9, 60, 2, 31, 12];

/// A scalar touching every logit: sum over positions of w[t, v] * logit[t, v] plus the
/// log-probability of the next token, so both the logits and the softmax are exercised.
fn scalar(m: &Transformer, ids: &[u32]) -> Tensor {
    let dev = Device::Cpu;
    let x = Tensor::new(ids, &dev).unwrap().unsqueeze(0).unwrap();
    let logits = m.forward(&x).unwrap().squeeze(0).unwrap();
    let (t, v) = logits.dims2().unwrap();
    let w: Vec<f64> = (0..t * v)
        .map(|i| ((i * 7919) % 13) as f64 / 13.0 - 0.5)
        .collect();
    let w = Tensor::from_vec(w, (t, v), &dev).unwrap();
    let a = (logits.clone() * w).unwrap().sum_all().unwrap();
    let lsm = candle_nn::ops::log_softmax(&logits.narrow(0, 0, t - 1).unwrap(), D::Minus1).unwrap();
    let tg = Tensor::new(&ids[1..], &dev).unwrap().unsqueeze(1).unwrap();
    let b = lsm.gather(&tg, 1).unwrap().sum_all().unwrap();
    (a + b).unwrap()
}

fn with_param(m: &Transformer, name: &str, idx: usize, delta: f64) -> Transformer {
    let mut w = m.weights();
    let t = &w[name];
    let shape = t.dims().to_vec();
    let mut v: Vec<f64> = t.flatten_all().unwrap().to_vec1().unwrap();
    v[idx] += delta;
    w.insert(
        name.into(),
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap(),
    );
    Transformer::from_weights(m.cfg.clone(), w, DType::F64, &Device::Cpu, "fd").unwrap()
}

fn check_gradients(arch: Arch) {
    let mut m = tiny_random(arch, DType::F64, 11).unwrap();
    let vars = m.set_trainable(|_| true).unwrap();
    let names: Vec<String> = m.params().iter().map(|p| p.name.clone()).collect();
    assert_eq!(vars.len(), names.len());
    let grads = scalar(&m, &IDS).backward().unwrap();
    let mut worst = 0f64;
    for (p, var) in m.params().iter().zip(&vars) {
        let g = grads
            .get(var)
            .unwrap_or_else(|| panic!("{arch:?}: no gradient for {}", p.name));
        let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
        let gmax = g.iter().fold(0f64, |a, b| a.max(b.abs()));
        assert!(gmax > 0.0, "{arch:?}: gradient of {} is all zero", p.name);
        // Three entries per tensor: the largest and two spread ones.
        let imax = (0..g.len())
            .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
            .unwrap();
        for idx in [imax, g.len() / 3, (2 * g.len()) / 3 + 1] {
            let idx = idx.min(g.len() - 1);
            let eps = 1e-5;
            let up = scalar(&with_param(&m, &p.name, idx, eps), &IDS)
                .to_scalar::<f64>()
                .unwrap();
            let dn = scalar(&with_param(&m, &p.name, idx, -eps), &IDS)
                .to_scalar::<f64>()
                .unwrap();
            let fd = (up - dn) / (2.0 * eps);
            let denom = fd.abs().max(g[idx].abs()).max(1e-3 * gmax);
            let rel = (fd - g[idx]).abs() / denom;
            worst = worst.max(rel);
            assert!(
                rel <= 1e-3,
                "{arch:?} {}[{idx}]: backward {} vs finite difference {fd} (rel {rel:.2e})",
                p.name,
                g[idx]
            );
        }
    }
    println!(
        "{arch:?}: {} tensors, worst relative error {worst:.2e}",
        names.len()
    );
}

#[test]
fn llama_gradients_match_finite_differences() {
    check_gradients(Arch::Llama);
}

#[test]
fn qwen2_gradients_match_finite_differences() {
    check_gradients(Arch::Qwen2);
}

#[test]
fn qwen3_gradients_match_finite_differences() {
    check_gradients(Arch::Qwen3);
}

#[test]
fn frozen_params_get_no_gradient() {
    let mut m = tiny_random(Arch::Llama, DType::F64, 3).unwrap();
    let vars = m.set_trainable(|n| n.contains("q_proj")).unwrap();
    assert_eq!(vars.len(), 2);
    let grads = scalar(&m, &IDS).backward().unwrap();
    for v in &vars {
        assert!(grads.get(v).is_some());
    }
    for p in m.params() {
        assert_eq!(p.var.is_some(), p.name.contains("q_proj"), "{}", p.name);
    }
}

/// Right-padded batches give every sequence exactly the logits and the gradient it gets alone.
#[test]
fn padded_batch_equals_single_sequences() {
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        let mut m = tiny_random(arch, DType::F64, 5).unwrap();
        let vars = m.set_trainable(|_| true).unwrap();
        let seqs: [&[u32]; 3] = [&IDS, &IDS[2..6], &[7, 7, 8]];
        let t = IDS.len();
        let dev = Device::Cpu;
        let mut flat = vec![];
        for s in seqs {
            flat.extend_from_slice(s);
            flat.extend(std::iter::repeat_n(0u32, t - s.len()));
        }
        let batch = Tensor::from_vec(flat, (3, t), &dev).unwrap();
        let logits = m.forward(&batch).unwrap();
        let mut loss_b = Tensor::new(0f64, &dev).unwrap();
        let mut loss_s = Tensor::new(0f64, &dev).unwrap();
        for (b, s) in seqs.iter().enumerate() {
            let single = m
                .forward(&Tensor::new(*s, &dev).unwrap().unsqueeze(0).unwrap())
                .unwrap()
                .squeeze(0)
                .unwrap();
            let part = logits.get(b).unwrap().narrow(0, 0, s.len()).unwrap();
            let diff = (single.clone() - &part)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert!(diff < 1e-12, "{arch:?} seq {b}: padded differs by {diff}");
            let lsm = |x: &Tensor| {
                candle_nn::ops::log_softmax(x, D::Minus1)
                    .unwrap()
                    .narrow(1, 3, 1)
                    .unwrap()
                    .sum_all()
                    .unwrap()
            };
            loss_b = (loss_b + lsm(&part)).unwrap();
            loss_s = (loss_s + lsm(&single)).unwrap();
        }
        let gb = loss_b.backward().unwrap();
        let gs = loss_s.backward().unwrap();
        for v in &vars {
            let d = (gb.get(v).unwrap() - gs.get(v).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert!(d < 1e-11, "{arch:?}: padded gradient differs by {d}");
        }
    }
}

/// Incremental decoding with the KV cache and fused ops (left-padded batch) reproduces the
/// logits of the teacher-forced differentiable pass.
#[test]
fn kv_cache_path_matches_teacher_forced_path() {
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        let m = tiny_random(arch, DType::F32, 9).unwrap();
        let dev = Device::Cpu;
        let seqs: [&[u32]; 2] = [&IDS, &IDS[3..]];
        let full = IDS.len();
        let pads: Vec<usize> = seqs.iter().map(|s| full - s.len()).collect();
        let prompt = 4; // tokens prefilled; the rest decoded one at a time
        let mut cache = KvCache::new(m.cfg.num_layers, full);
        let mut got: Vec<Vec<Vec<f32>>> = vec![vec![]; 2];
        let mut ids = vec![];
        for (s, &p) in seqs.iter().zip(&pads) {
            let mut row = vec![0u32; p];
            row.extend_from_slice(s);
            ids.push(row);
        }
        let take = |from: usize, n: usize| {
            let v: Vec<u32> = ids
                .iter()
                .flat_map(|r| r[from..from + n].to_vec())
                .collect();
            Tensor::from_vec(v, (2, n), &dev).unwrap()
        };
        let attn = AttnInput::left_padded(&pads, 0, prompt, DType::F32, &dev).unwrap();
        let l = m
            .forward_cached(&take(0, prompt), &attn, &mut cache, false)
            .unwrap();
        for (b, g) in got.iter_mut().enumerate() {
            g.extend(l.get(b).unwrap().to_vec2::<f32>().unwrap());
        }
        for pos in prompt..full {
            let attn = AttnInput::left_padded(&pads, cache.len(), 1, DType::F32, &dev).unwrap();
            let l = m
                .forward_cached(&take(pos, 1), &attn, &mut cache, false)
                .unwrap();
            for (b, g) in got.iter_mut().enumerate() {
                g.extend(l.get(b).unwrap().to_vec2::<f32>().unwrap());
            }
        }
        for (b, s) in seqs.iter().enumerate() {
            let want = m
                .forward(&Tensor::new(*s, &dev).unwrap().unsqueeze(0).unwrap())
                .unwrap()
                .squeeze(0)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for (i, w) in want.iter().enumerate() {
                let g = &got[b][pads[b] + i];
                let d = g
                    .iter()
                    .zip(w)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    d < 1e-4,
                    "{arch:?} row {b} pos {i}: cached path differs by {d}"
                );
            }
        }
    }
}

/// Log-probabilities computed chunk by chunk equal those from the full logits.
#[test]
fn chunked_target_logprobs_equal_full() {
    let m = tiny_random(Arch::Qwen2, DType::F64, 2).unwrap();
    let dev = Device::Cpu;
    let x = Tensor::new(&IDS[..8], &dev).unwrap().unsqueeze(0).unwrap();
    let y = Tensor::new(&IDS[1..], &dev).unwrap().unsqueeze(0).unwrap();
    let attn = AttnInput::causal(1, 8, DType::F64, &dev).unwrap();
    let h = m.forward_hidden(&x, &attn).unwrap();
    let (lp, _) =
        egi_model::pass::head::logprobs(&m, &h.squeeze(0).unwrap(), &y.squeeze(0).unwrap(), 3)
            .unwrap();
    let a: Vec<f64> = lp.flatten_all().unwrap().to_vec1().unwrap();
    let full = candle_nn::ops::log_softmax(&m.logits(&h).unwrap(), D::Minus1).unwrap();
    let b: Vec<f64> = full
        .gather(&y.unsqueeze(2).unwrap(), 2)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 1e-12);
    }
}
