//! Rewards: verified accuracy, optional format reward, DAPO's soft overlong penalty, and
//! CorR-PO's fingerprint reward R_corr = -(1 + rho).

use serde::Serialize;

/// One rollout's reward, by component (logged separately) and in total.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Reward {
    /// 1 if the verifier accepts the final answer, else 0.
    pub acc: f64,
    /// 1 if the answer was given in an explicit form (\boxed, "####", "the answer is"), else
    /// 0; counted with weight `format_weight`.
    pub format: f64,
    /// DAPO soft overlong penalty, in [-1, 0] (0 when off).
    pub overlong: f64,
    /// Step-level rho of the rollout (CorR-PO only; None when undefined or not measured).
    pub rho: Option<f64>,
    /// -(1 + rho), rho undefined counted as 0 (CorR-PO only, else 0).
    pub corr: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct RewardWeights {
    pub format: f64,
    /// CorR-PO's lambda (0 for the baselines).
    pub lambda: f64,
}

/// R_corr = -(1 + rho) in [-2, 0]; an undefined rho (fewer than 3 steps, zero variance)
/// counts as 0, i.e. -1.
pub fn corr_reward(rho: Option<f64>) -> f64 {
    -(1.0 + rho.unwrap_or(0.0))
}

/// DAPO's soft overlong punishment for a response of `len` tokens: 0 up to L_max - L_c, then
/// linear down to -1 at L_max, and -1 beyond.
pub fn overlong_penalty(len: usize, l_max: usize, l_cache: usize) -> f64 {
    let safe = l_max.saturating_sub(l_cache);
    if len <= safe {
        0.0
    } else if len <= l_max {
        (safe as f64 - len as f64) / l_cache.max(1) as f64
    } else {
        -1.0
    }
}

impl Reward {
    /// r = R_acc + w_format R_format + R_overlong + lambda R_corr.
    pub fn finish(mut self, w: &RewardWeights, corr_po: bool) -> Self {
        self.corr = if corr_po { corr_reward(self.rho) } else { 0.0 };
        self.total = self.acc + w.format * self.format + self.overlong + w.lambda * self.corr;
        self
    }
}
