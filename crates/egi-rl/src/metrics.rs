//! One RL step's metrics: the line appended to `RUN/metrics.jsonl` (field names are what
//! users' scripts and `egi plot` read; docs/method.md describes each).

use serde::Serialize;

use crate::config::TrainConfig;
use crate::reward::Reward;
use crate::rl::{Batch, Update};
use egi_generate::FinishReason;

#[derive(Debug, Clone, Serialize)]
pub struct StepMetrics {
    pub step: usize,
    pub algo: &'static str,
    /// Total reward over every sampled response: mean and (population) std.
    pub reward_mean: f64,
    pub reward_std: f64,
    /// Reward terms, mean over every sampled response.
    pub reward_acc: Option<f64>,
    pub reward_format: Option<f64>,
    pub reward_overlong: Option<f64>,
    pub reward_corr: Option<f64>,
    /// Verifier accuracy of every sampled response, and of the kept ones.
    pub accuracy: Option<f64>,
    pub accuracy_kept: Option<f64>,
    /// CorR-PO (or --measure-rho true): mean rho_step over responses where it is defined,
    /// and that fraction.
    pub rho_mean: Option<f64>,
    pub rho_defined: Option<f64>,
    pub entropy_mean: Option<f64>,
    pub kl: Option<f64>,
    /// Ratio units (tokens; sequences for GSPO) clipped, and the ratio's mean / min / max.
    pub clip_frac: Option<f64>,
    pub ratio_mean: Option<f64>,
    pub ratio_min: Option<f64>,
    pub ratio_max: Option<f64>,
    pub loss: f64,
    pub response_len_mean: f64,
    pub truncated_frac: f64,
    /// Dynamic sampling: groups kept, dropped, sampled in all, and sampling rounds.
    pub groups_kept: usize,
    pub groups_dropped: usize,
    pub groups_sampled: usize,
    pub sampling_rounds: usize,
    /// Kept groups whose responses all got the same accuracy: their advantages come from the
    /// other reward terms alone (for CorR-PO on a std-normalised base, from lambda * R_corr
    /// at full size whatever lambda is).
    pub groups_rho_only: Option<f64>,
    pub grad_norm: f64,
    pub lr: f64,
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub seconds_rollout: f64,
    pub seconds_reward: f64,
    pub seconds_fingerprint: f64,
    /// CorR-PO (or --measure-rho true): the fingerprint's backward work this step, GFLOP
    /// (2 x non-embedding params x prefix per step target, as `egi bench --probe` counts):
    /// over `seconds_fingerprint` the rate it achieved, over the matmul rate its floor.
    pub fingerprint_gflop: Option<f64>,
    pub seconds_update: f64,
    pub seconds_step: f64,
}

/// Seconds of a step's phases before the update, and the fingerprint's backward FLOPs.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Phases {
    pub rollout: f64,
    pub reward: f64,
    pub fingerprint: f64,
    pub fingerprint_flops: f64,
}

fn mean_of(v: &[&Reward], f: impl Fn(&Reward) -> f64) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().map(|r| f(r)).sum::<f64>() / v.len() as f64)
}

impl StepMetrics {
    /// `secs`: the phases before the update; `seconds_step`: the whole step.
    pub(crate) fn new(
        step: usize,
        cfg: &TrainConfig,
        b: &Batch,
        u: &Update,
        secs: Phases,
        seconds_step: f64,
    ) -> Self {
        let kept: Vec<&Reward> = b
            .kept
            .iter()
            .flat_map(|&i| b.all[i].rewards.iter())
            .collect();
        let every: Vec<&Reward> = b.all.iter().flat_map(|g| g.rewards.iter()).collect();
        let tot_mean = mean_of(&every, |r| r.total).unwrap_or(0.0);
        let tot_std = (every
            .iter()
            .map(|r| (r.total - tot_mean).powi(2))
            .sum::<f64>()
            / every.len().max(1) as f64)
            .sqrt();
        let rhos: Vec<f64> = every.iter().filter_map(|r| r.rho).collect();
        let lens: Vec<usize> = b
            .all
            .iter()
            .flat_map(|g| g.completions.iter().map(|c| c.token_ids.len()))
            .collect();
        let tokens: usize = lens.iter().sum();
        let truncated = b
            .all
            .iter()
            .flat_map(|g| &g.completions)
            .filter(|c| c.finish_reason == FinishReason::Length)
            .count();
        let st = &u.stats;
        let per_unit = |x: f64| (st.units > 0).then_some(x);
        StepMetrics {
            step,
            algo: cfg.algo.name(),
            reward_mean: tot_mean,
            reward_std: tot_std,
            reward_acc: mean_of(&every, |r| r.acc),
            reward_format: mean_of(&every, |r| r.format),
            reward_overlong: mean_of(&every, |r| r.overlong),
            reward_corr: mean_of(&every, |r| r.corr),
            accuracy: mean_of(&every, |r| r.acc),
            accuracy_kept: mean_of(&kept, |r| r.acc),
            rho_mean: (!rhos.is_empty()).then(|| rhos.iter().sum::<f64>() / rhos.len() as f64),
            rho_defined: cfg
                .measures_rho()
                .then(|| rhos.len() as f64 / every.len().max(1) as f64),
            entropy_mean: (u.ent_n > 0).then(|| u.ent_sum / u.ent_n as f64),
            kl: (st.kl_n > 0).then(|| st.kl_sum / st.kl_n as f64),
            clip_frac: per_unit(st.clipped as f64 / st.units.max(1) as f64),
            ratio_mean: per_unit(st.ratio_sum / st.units.max(1) as f64),
            ratio_min: per_unit(st.ratio_min),
            ratio_max: per_unit(st.ratio_max),
            loss: st.loss,
            response_len_mean: tokens as f64 / lens.len().max(1) as f64,
            truncated_frac: truncated as f64 / lens.len().max(1) as f64,
            groups_kept: b.kept.len(),
            groups_dropped: b.all.len() - b.kept.len(),
            groups_sampled: b.all.len(),
            sampling_rounds: b.rounds,
            groups_rho_only: (!b.kept.is_empty()).then(|| {
                b.kept
                    .iter()
                    .filter(|&&i| {
                        let acc: Vec<f64> = b.all[i].rewards.iter().map(|r| r.acc).collect();
                        crate::advantage::all_equal(&acc)
                    })
                    .count() as f64
                    / b.kept.len() as f64
            }),
            grad_norm: u.grad_norm,
            lr: u.lr,
            tokens,
            tokens_per_s: tokens as f64 / seconds_step,
            seconds_rollout: secs.rollout,
            seconds_reward: secs.reward,
            seconds_fingerprint: secs.fingerprint,
            fingerprint_gflop: cfg.measures_rho().then_some(secs.fingerprint_flops / 1e9),
            seconds_update: u.seconds,
            seconds_step,
        }
    }
}
