//! Every loss, advantage and reward against values computed by hand from docs/method.md sections
//! 4-5 (ratios chosen on both sides of each clip boundary; gradients checked too).

use candle_core::{Device, Tensor, Var};
use egi_rl::advantage::{all_equal, group_advantages, informative, Scale};
use egi_rl::loss::{policy_loss, Base, LossConfig, Normalizer, TokenBatch};
use egi_rl::reward::{corr_reward, overlong_penalty, Reward, RewardWeights};

fn run(
    logp: &[f32],
    old: &[f32],
    seq: &[usize],
    adv: &[f32],
    cfg: LossConfig,
    norm: Normalizer,
    ref_logp: Option<Vec<f32>>,
) -> (f64, Vec<f32>, egi_rl::loss::LossStats) {
    let v = Var::from_tensor(&Tensor::new(logp, &Device::Cpu).unwrap()).unwrap();
    let b = TokenBatch {
        seq: seq.to_vec(),
        old_logp: old.to_vec(),
        ref_logp,
        adv: adv.to_vec(),
    };
    let (loss, st) = policy_loss(v.as_tensor(), &b, &cfg, &norm).unwrap();
    let g = loss.backward().unwrap();
    let grad = g
        .get(&v)
        .map(|t| t.to_vec1::<f32>().unwrap())
        .unwrap_or_else(|| vec![0.0; logp.len()]);
    (loss.to_scalar::<f32>().unwrap() as f64, grad, st)
}

fn cfg(base: Base) -> LossConfig {
    let (l, h) = base.default_clip();
    LossConfig {
        base,
        eps_low: l,
        eps_high: h,
        beta: 0.0,
    }
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
}
fn close_v(a: &[f32], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((*x as f64 - y).abs() < 1e-6, "{a:?} vs {b:?}");
    }
}

#[test]
fn grpo_on_policy_is_the_per_sequence_mean_of_advantages() {
    // Two responses (2 tokens, 1 token), ratio 1: loss = -(1/2)[(1 + 1)/2 * 1 + (1/1) * -0.5].
    let lp = [-1.0f32, -2.0, -0.5];
    let norm = Normalizer {
        n_seq: 2,
        n_tok: 3,
        max_len: 8,
    };
    let (loss, g, st) = run(
        &lp,
        &lp,
        &[0, 0, 1],
        &[1.0, -0.5],
        cfg(Base::Grpo),
        norm,
        None,
    );
    close(loss, -0.25);
    // d/d logp_t = -c_t w A: c = 1/(|o_i| N).
    close_v(&g, &[-0.25, -0.25, 0.25]);
    assert_eq!((st.units, st.clipped), (3, 0));
    close(st.ratio_sum / 3.0, 1.0);
}

#[test]
fn grpo_clip_boundaries_in_both_directions() {
    // One token per sequence, N = 4: ratio 1.3 / 1.1 with A > 0; 0.7 with A < 0 and A > 0; and
    // 1.3 with A < 0 (pessimistic branch: unclipped).
    let old = [0.0f32; 5];
    let r = [1.3f64, 1.1, 0.7, 0.7, 1.3];
    let lp: Vec<f32> = r.iter().map(|x| x.ln() as f32).collect();
    let adv = [2.0f32, 2.0, -1.0, 1.0, -1.0];
    let norm = Normalizer {
        n_seq: 5,
        n_tok: 5,
        max_len: 8,
    };
    let (loss, g, st) = run(
        &lp,
        &old,
        &[0, 1, 2, 3, 4],
        &adv,
        cfg(Base::Grpo),
        norm,
        None,
    );
    // objectives: min(2.6, 2.4)=2.4; 2.2; min(-0.7, -0.8)=-0.8; min(0.7, 0.8)=0.7; min(-1.3,-1.2)=-1.3
    close(loss, -(2.4 + 2.2 - 0.8 + 0.7 - 1.3) / 5.0);
    // gradient -w A / N where unclipped, 0 where the clipped branch is active
    close_v(&g, &[0.0, -1.1 * 2.0 / 5.0, 0.0, -0.7 / 5.0, 1.3 / 5.0]);
    assert_eq!(st.clipped, 2);
    close(st.ratio_max, 1.3);
    close(st.ratio_min, 0.7);
}

#[test]
fn dapo_clips_higher_and_normalises_by_batch_tokens() {
    // ratio 1.25 with A > 0: clipped by GRPO's 1.2, not by DAPO's 1.28.
    let old = [0.0f32; 3];
    let lp = [1.25f64.ln() as f32, 0.0, 0.0];
    // n_tok = 10 in the whole batch (other micro-batches hold the rest).
    let norm = Normalizer {
        n_seq: 4,
        n_tok: 10,
        max_len: 8,
    };
    let (loss, g, st) = run(
        &lp,
        &old,
        &[0, 0, 1],
        &[1.0, -1.0],
        cfg(Base::Dapo),
        norm,
        None,
    );
    close(loss, -(1.25 + 1.0 - 1.0) / 10.0);
    close_v(&g, &[-1.25 / 10.0, -0.1, 0.1]);
    assert_eq!(st.clipped, 0);
    let (_, g, st) = run(
        &lp,
        &old,
        &[0, 0, 1],
        &[1.0, -1.0],
        cfg(Base::Grpo),
        norm,
        None,
    );
    assert_eq!(st.clipped, 1);
    close(g[0] as f64, 0.0);
}

#[test]
fn dr_grpo_divides_by_the_constant_generation_length() {
    let lp = [-1.0f32, -1.0, -1.0];
    let norm = Normalizer {
        n_seq: 2,
        n_tok: 3,
        max_len: 4,
    };
    let (loss, g, _) = run(
        &lp,
        &lp,
        &[0, 0, 1],
        &[0.5, -0.5],
        cfg(Base::DrGrpo),
        norm,
        None,
    );
    // sum_t(-A) / (L_max N) = -(0.5 + 0.5 - 0.5) / (4 * 2)
    close(loss, -0.5 / 8.0);
    close_v(&g, &[-0.5 / 8.0, -0.5 / 8.0, 0.5 / 8.0]);
}

#[test]
fn gspo_uses_the_sequence_ratio_and_its_tiny_clip_range() {
    // Sequence 0: log-ratios 0.0002, 0.0 -> s = exp(0.0001) (inside [1-3e-4, 1+4e-4]).
    // Sequence 1: log-ratios 0.002 -> s = exp(0.002) > 1 + 4e-4 with A > 0: clipped.
    // Sequence 2: zero tokens -> no contribution.
    let old = [0.0f32; 3];
    let lp = [0.0002f32, 0.0, 0.002];
    let norm = Normalizer {
        n_seq: 3,
        n_tok: 3,
        max_len: 8,
    };
    let adv = [1.0f32, 2.0, 5.0];
    let (loss, g, st) = run(&lp, &old, &[0, 0, 1], &adv, cfg(Base::Gspo), norm, None);
    let s0 = 0.0001f64.exp();
    close(loss, -(s0 * 1.0 + (1.0 + 4e-4) * 2.0) / 3.0);
    // d/d logp_t of -(1/N) s A with s = exp(mean): -(1/N) s A / |o|
    close_v(&g, &[-s0 / 3.0 / 2.0, -s0 / 3.0 / 2.0, 0.0]);
    assert_eq!((st.units, st.clipped), (2, 1));
}

#[test]
fn k3_kl_term_and_its_gradient() {
    // One token, A = 0: loss = beta * (e^d - d - 1), d = ref - logp.
    let lp = [-1.0f32];
    let refp = vec![-1.5f32];
    let mut c = cfg(Base::Grpo);
    c.beta = 0.04;
    let norm = Normalizer {
        n_seq: 1,
        n_tok: 1,
        max_len: 8,
    };
    let (loss, g, st) = run(&lp, &lp, &[0], &[0.0], c, norm, Some(refp));
    let d = -0.5f64;
    close(loss, 0.04 * (d.exp() - d - 1.0));
    close(st.kl_sum, d.exp() - d - 1.0);
    close_v(&g, &[0.04 * (1.0 - d.exp())]);
}

#[test]
fn advantages_by_hand() {
    // mean 0.5, sample std sqrt(1/3)
    let a = group_advantages(&[1.0, 0.0, 0.0, 1.0], 4, Scale::Std);
    let s = (1.0f64 / 3.0).sqrt() + 1e-4;
    for (x, y) in a.iter().zip([0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s]) {
        close(*x, y);
    }
    assert_eq!(
        group_advantages(&[1.0, 0.0, 0.5, 0.5], 2, Scale::None),
        vec![0.5, -0.5, 0.0, 0.0]
    );
    // all-equal groups: zero advantages (and DAPO drops them)
    assert_eq!(group_advantages(&[0.3; 4], 4, Scale::Std), vec![0.0; 4]);
    assert!(all_equal(&[0.0, 0.0]) && !all_equal(&[0.0, 1.0]));
    // DAPO's dynamic sampling decides on accuracy: an all-wrong group whose totals differ
    // only by the overlong penalty and CorR-PO's term is still dropped
    let w = RewardWeights {
        format: 0.0,
        lambda: 0.1,
    };
    let wrong: Vec<Reward> = [(0.0, Some(0.5)), (-0.5, Some(-0.5)), (-1.0, None)]
        .iter()
        .map(|&(ov, rho)| {
            Reward {
                acc: 0.0,
                format: 0.0,
                overlong: ov,
                rho,
                corr: 0.0,
                total: 0.0,
            }
            .finish(&w, true)
        })
        .collect();
    let totals: Vec<f64> = wrong.iter().map(|r| r.total).collect();
    assert!(!all_equal(&totals), "{totals:?}");
    assert!(!informative(
        &wrong.iter().map(|r| r.acc).collect::<Vec<_>>()
    ));
    assert!(informative(&[1.0, 0.0, 0.0]));
    // and an all-zero-advantage batch gives zero loss and zero gradient
    let lp = [-1.0f32, -3.0];
    let norm = Normalizer {
        n_seq: 2,
        n_tok: 2,
        max_len: 8,
    };
    let (loss, g, _) = run(&lp, &lp, &[0, 1], &[0.0, 0.0], cfg(Base::Grpo), norm, None);
    close(loss, 0.0);
    close_v(&g, &[0.0, 0.0]);
}

#[test]
fn zero_length_responses_contribute_nothing() {
    // Sequence 1 has no tokens; GRPO still divides by N = 2 sequences.
    let lp = [-1.0f32];
    let norm = Normalizer {
        n_seq: 2,
        n_tok: 1,
        max_len: 8,
    };
    let (loss, _, st) = run(&lp, &lp, &[0], &[1.0, -1.0], cfg(Base::Grpo), norm, None);
    close(loss, -0.5);
    assert_eq!(st.units, 1);
    let (loss, _, _) = run(&lp, &lp, &[0], &[1.0, -1.0], cfg(Base::Gspo), norm, None);
    close(loss, -0.5);
}

#[test]
fn rewards_by_hand() {
    // R_corr = -(1 + rho): 0 at perfect inversion, -2 at rho = 1, -1 when undefined.
    close(corr_reward(Some(-1.0)), 0.0);
    close(corr_reward(Some(1.0)), -2.0);
    close(corr_reward(Some(-0.4)), -0.6);
    close(corr_reward(None), -1.0);
    // DAPO: L_max 100, L_c 20: 0 up to 80, linear to -1 at 100, -1 beyond.
    close(overlong_penalty(80, 100, 20), 0.0);
    close(overlong_penalty(90, 100, 20), -0.5);
    close(overlong_penalty(100, 100, 20), -1.0);
    close(overlong_penalty(130, 100, 20), -1.0);
    let w = RewardWeights {
        format: 0.5,
        lambda: 0.1,
    };
    let r = Reward {
        acc: 1.0,
        format: 1.0,
        overlong: -0.25,
        rho: Some(-0.4),
        ..Default::default()
    };
    let c = r.clone().finish(&w, true);
    close(c.total, 1.0 + 0.5 - 0.25 + 0.1 * -0.6);
    close(c.corr, -0.6);
    let b = r.finish(&w, false);
    close(b.total, 1.25);
    close(b.corr, 0.0);
}
