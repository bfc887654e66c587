//! The hand-written training backward (the default) and candle's autograd give the same
//! gradients for the real policy losses on packed groups: every base algorithm, all weights
//! or attention only, tied (Llama) and untied (Qwen2) heads, Qwen3's q/k norms, and SFT's NLL.
//! (egi-model's tests/backprop.rs checks the body pass alone in f64.)

use candle_core::DType;
use egi_model::testing::tiny_random;
use egi_model::Arch;
use egi_rl::loss::{policy_loss, Base, LossConfig, Normalizer, TokenBatch};
use egi_rl::policy::pack;
use egi_rl::policy_state::Policy;
use egi_rl::{Backward, TrainConfig, Trainable};

fn grads(
    arch: Arch,
    trainable: Trainable,
    backward: Backward,
    base: Option<Base>,
) -> Vec<Vec<f32>> {
    let model = tiny_random(arch, DType::F32, 5).unwrap();
    let cfg = TrainConfig {
        trainable,
        backward,
        ..TrainConfig::default()
    };
    let mut pol = Policy::new(model, &cfg).unwrap();
    let prompt = [3u32, 8, 21, 5, 40];
    let resp: [&[u32]; 3] = [&[7, 9, 11, 2], &[13], &[30, 31, 32]];
    let pk = pack(&prompt, &resp);
    let mut acc = vec![None; pol.opt.vars().len()];
    let fwd = pol.forward(&pk, 3).unwrap(); // a chunk smaller than the targets
    let logp = fwd.logp().clone();
    let n = pk.tgt.len();
    let loss = match base {
        Some(base) => {
            // pi_old off the current policy so that some ratios fall outside the clip range.
            let lp: Vec<f32> = logp.to_vec1().unwrap();
            let old: Vec<f32> = lp
                .iter()
                .enumerate()
                .map(|(i, &x)| x + [0.0, 0.3, -0.25, 0.05][i % 4])
                .collect();
            let b = TokenBatch {
                seq: pk.seq.clone(),
                old_logp: old,
                ref_logp: None,
                adv: vec![1.0, -0.5, -0.7],
            };
            let (l, h) = base.default_clip();
            let lc = LossConfig {
                base,
                eps_low: l,
                eps_high: h,
                beta: 0.0,
            };
            let norm = Normalizer {
                n_seq: 3,
                n_tok: n,
                max_len: 4,
            };
            policy_loss(&logp, &b, &lc, &norm).unwrap().0
        }
        None => (logp.sum_all().unwrap() * (-1.0 / n as f64)).unwrap(),
    };
    pol.backward(fwd, &loss, &mut acc).unwrap();
    acc.into_iter()
        .map(|g| {
            g.expect("every trainable weight gets a gradient")
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        })
        .collect()
}

fn same(arch: Arch, trainable: Trainable, base: Option<Base>) {
    let a = grads(arch, trainable, Backward::Fused, base);
    let b = grads(arch, trainable, Backward::Autograd, base);
    assert_eq!(a.len(), b.len());
    let mut nonzero = 0;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
        nonzero += (scale > 0.0) as usize;
        let err = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(
            err <= 2e-4 * scale.max(1e-6),
            "{arch:?} {trainable:?} {base:?}: variable {i} differs by {err} (scale {scale})"
        );
    }
    assert!(
        nonzero * 2 > a.len(),
        "{arch:?}: most gradients should be nonzero"
    );
}

#[test]
fn fused_backward_equals_autograd_for_every_loss() {
    for base in [Base::Grpo, Base::DrGrpo, Base::Dapo, Base::Gspo] {
        same(Arch::Llama, Trainable::All, Some(base));
    }
    same(Arch::Qwen2, Trainable::All, Some(Base::Grpo));
    same(Arch::Qwen3, Trainable::All, Some(Base::Dapo));
}

#[test]
fn fused_backward_equals_autograd_attention_only_and_sft() {
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        same(arch, Trainable::Attention, Some(Base::Grpo));
        same(arch, Trainable::All, None);
    }
}

/// The head's softmax kept from the forward (the default) or recomputed in the backward (when
/// it exceeds the memory budget) gives the same gradients.
#[test]
fn kept_and_recomputed_head_softmax_agree() {
    use candle_core::Tensor;
    use egi_rl::policy::LogprobPass;
    for arch in [Arch::Llama, Arch::Qwen2] {
        let model = tiny_random(arch, DType::F32, 6).unwrap();
        let prompt = [3u32, 8, 21, 5, 40];
        let resp: [&[u32]; 2] = [&[7, 9, 11, 2, 50], &[13, 1]];
        let pk = pack(&prompt, &resp);
        let n = pk.tgt.len();
        let d: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let d = Tensor::from_vec(d, n, model.device()).unwrap();
        let run = |budget: usize| {
            let p = LogprobPass::record_budget(&model, &pk, 3, budget).unwrap();
            let g = p.backward(&model, &d, &|_| true).unwrap();
            (p.logp.to_vec1::<f32>().unwrap(), p.ent.clone(), g)
        };
        let (l1, e1, g1) = run(usize::MAX);
        let (l2, e2, g2) = run(0);
        assert_eq!((l1, e1), (l2, e2));
        for (a, b) in g1.iter().zip(&g2) {
            let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
            let err = (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let scale = a
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(err <= 1e-5 * scale.max(1e-6), "{arch:?}: differs by {err}");
        }
    }
}
