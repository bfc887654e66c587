//! Pass@k with the unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), and
//! summaries with bootstrap confidence intervals over problems.

use egi_report::stats::{self, Stat};

/// Unbiased Pass@k from n samples with c correct; None when k > n.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i), numerically stable.
    let mut q = 1.0;
    for i in (n - c + 1)..=n {
        q *= 1.0 - k as f64 / i as f64;
    }
    Some(1.0 - q)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Estimate {
    pub mean: f64,
    pub ci95: Option<[f64; 2]>,
    /// For 0/1 outcomes (one sample per problem): the Wilson score interval, which stays
    /// informative where the bootstrap collapses (0 of 100 correct gives [0, 0] by bootstrap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wilson95: Option<[f64; 2]>,
    pub problems: usize,
}

/// Wilson score interval (z = 1.96) for `c` successes in `n` trials.
pub fn wilson95(c: usize, n: usize) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let (z, nf) = (1.959964f64, n as f64);
    let p = c as f64 / nf;
    let den = 1.0 + z * z / nf;
    let centre = (p + z * z / (2.0 * nf)) / den;
    let half = z * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt() / den;
    Some([(centre - half).max(0.0), (centre + half).min(1.0)])
}

/// Mean over problems with a percentile-bootstrap 95% CI (resampling problems).
pub fn estimate(per_problem: &[f64], n_boot: usize, seed: u64) -> Option<Estimate> {
    let mean = stats::mean(per_problem)?;
    let binary = per_problem.iter().all(|&x| x == 0.0 || x == 1.0);
    Some(Estimate {
        mean,
        ci95: stats::bootstrap_ci(per_problem, Stat::Mean, n_boot, 0.95, seed).map(|(a, b)| [a, b]),
        wilson95: if binary {
            wilson95(
                per_problem.iter().filter(|&&x| x == 1.0).count(),
                per_problem.len(),
            )
        } else {
            None
        },
        problems: per_problem.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binom(n: u64, k: u64) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn pass_at_k_equals_the_combinatorial_formula() {
        for n in 1..=20usize {
            for c in 0..=n {
                for k in 1..=n {
                    let want = 1.0 - binom((n - c) as u64, k as u64) / binom(n as u64, k as u64);
                    let got = pass_at_k(n, c, k).unwrap();
                    assert!(
                        (got - want).abs() < 1e-12,
                        "n={n} c={c} k={k}: {got} vs {want}"
                    );
                }
            }
        }
        assert_eq!(pass_at_k(4, 1, 1), Some(0.25));
        assert_eq!(pass_at_k(3, 0, 2), Some(0.0));
        assert_eq!(pass_at_k(2, 1, 3), None);
    }

    #[test]
    fn wilson_interval_known_values() {
        // 0 of 100: upper bound 0.0370; 50 of 100: [0.4038, 0.5962] (standard tables).
        let a = wilson95(0, 100).unwrap();
        assert!(a[0] == 0.0 && (a[1] - 0.0370).abs() < 1e-4, "{a:?}");
        let b = wilson95(50, 100).unwrap();
        assert!(
            (b[0] - 0.4038).abs() < 1e-4 && (b[1] - 0.5962).abs() < 1e-4,
            "{b:?}"
        );
        let e = estimate(&[0.0; 100], 200, 0).unwrap();
        assert_eq!(e.ci95, Some([0.0, 0.0]));
        assert!(e.wilson95.unwrap()[1] > 0.03);
    }

    #[test]
    fn estimate_has_a_ci_around_the_mean() {
        let v: Vec<f64> = (0..100)
            .map(|i| if i % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let e = estimate(&v, 2000, 0).unwrap();
        let ci = e.ci95.unwrap();
        assert!((e.mean - 0.34).abs() < 1e-12 && ci[0] < e.mean && ci[1] > e.mean);
        assert!(ci[1] - ci[0] > 0.1 && ci[1] - ci[0] < 0.25);
    }
}
