//! Group-relative advantages (docs/method.md sections 4-5).

/// How a group's centred rewards are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// (r - mean) / (std + eps): GRPO, DAPO, GSPO, CorR-PO.
    Std,
    /// r - mean: Dr.GRPO.
    None,
}

/// Added to the group std before dividing (TRL uses the same 1e-4).
pub const STD_EPS: f64 = 1e-4;

/// Advantages of consecutive groups of `group` rewards. The std is the sample std (n - 1 in
/// the denominator, as torch.std and TRL); a group whose rewards are all equal gets all-zero
/// advantages whatever the scale.
pub fn group_advantages(rewards: &[f64], group: usize, scale: Scale) -> Vec<f64> {
    assert!(
        group > 0 && rewards.len().is_multiple_of(group),
        "rewards not a multiple of the group"
    );
    let mut out = Vec::with_capacity(rewards.len());
    for g in rewards.chunks(group) {
        let mean = g.iter().sum::<f64>() / g.len() as f64;
        let std = if g.len() > 1 {
            (g.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (g.len() - 1) as f64).sqrt()
        } else {
            0.0
        };
        for &r in g {
            out.push(if all_equal(g) {
                0.0
            } else {
                match scale {
                    Scale::Std => (r - mean) / (std + STD_EPS),
                    Scale::None => r - mean,
                }
            });
        }
    }
    out
}

/// All rewards equal: the group's advantages are all zero.
pub fn all_equal(g: &[f64]) -> bool {
    g.iter().all(|&r| (r - g[0]).abs() <= 1e-12)
}

/// DAPO's dynamic-sampling test: a group is kept when its responses differ in accuracy (some
/// right, some wrong). It is the accuracy that decides, not the total reward: with the
/// overlong penalty or CorR-PO's term the totals of an all-wrong group almost always differ,
/// and a test on them would never filter.
pub fn informative(accuracies: &[f64]) -> bool {
    !all_equal(accuracies)
}
