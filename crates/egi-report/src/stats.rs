//! Small, dependency-light statistics for egi reports: rank correlation, bootstrap confidence
//! intervals and permutation tests. Undefined results are `None`, never NaN.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Largest number of pairs for which [`paired_permutation_test`] enumerates all 2^n sign
/// flips instead of sampling them.
pub const EXACT_PAIRED_MAX: usize = 12;

/// Statistic bootstrapped by [`bootstrap_ci`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Mean,
    Median,
}

impl Stat {
    /// Applies the statistic; `None` on empty input.
    pub fn apply(self, values: &[f64]) -> Option<f64> {
        match self {
            Stat::Mean => mean(values),
            Stat::Median => median(values),
        }
    }
}

/// 1-based ranks; tied values share the average of the ranks they span (as scipy's
/// `rankdata(method="average")`). Non-finite values are ordered by `f64::total_cmp`.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        // `==` so that 0.0 and -0.0 tie, as they do in scipy.
        while j < order.len() && x[order[j]] == x[order[i]] {
            j += 1;
        }
        // Positions i..j hold ranks i+1..=j; their average is (i+1+j)/2.
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    ranks
}

/// Pearson correlation. `None` for fewer than 3 points, different lengths, any non-finite
/// value, or a side with zero variance.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 3 || !all_finite(x) || !all_finite(y) {
        return None;
    }
    // Exact constancy test: a two-pass variance of equal values can come out as a tiny
    // positive number through rounding of the mean, which would give a meaningless r.
    if is_constant(x) || is_constant(y) {
        return None;
    }
    // r is scale-invariant; scaling to max |v| = 1 keeps the sums of squares from
    // overflowing (1e200) or underflowing (1e-200).
    let x = scaled(x);
    let y = scaled(y);
    let mx = mean(&x)?;
    let my = mean(&y)?;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(&y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let r = sxy / (sxx.sqrt() * syy.sqrt());
    r.is_finite().then(|| r.clamp(-1.0, 1.0))
}

/// Spearman rank correlation: Pearson on average ranks. Same `None` cases as [`pearson`].
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 3 || !all_finite(x) || !all_finite(y) {
        return None;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Arithmetic mean; `None` on empty input.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// t(0.975, df) for df = 1..=30, the two-sided 95% Student t quantile (standard tables;
/// checked in the tests against the closed forms for df 1 and 2 and against the density
/// integrated numerically). Written out: the crate with the t distribution (statrs) brings a
/// linear-algebra stack for these 30 numbers.
const T975: [f64; 30] = [
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
    2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687,
    2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];

/// Mean of `values` with its 95% Student t interval, mean -/+ t(0.975, n-1) s / sqrt(n)
/// (s the sample standard deviation): the interval over a few independent runs, e.g. seeds.
/// Past 30 degrees of freedom the normal's 1.96 (at most 4% narrower). `None` below 2 values.
pub fn t_interval(values: &[f64]) -> Option<(f64, f64, f64)> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let m = mean(values)?;
    let s = (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let t = T975.get(n - 2).copied().unwrap_or(1.96);
    let h = t * s / (n as f64).sqrt();
    Some((m, m - h, m + h))
}

/// Median (average of the two middle values for even counts); `None` on empty input.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(median_sorted(&v))
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Percentile bootstrap confidence interval of `stat` at `level` (e.g. 0.95): `n_boot`
/// resamples of `values` with replacement, interval = the (1-level)/2 and (1+level)/2
/// quantiles (linear interpolation, as numpy's default) of the resampled statistics.
/// Deterministic for a seed. `None` for fewer than 2 values, any non-finite value,
/// `n_boot == 0`, or `level` outside (0, 1).
pub fn bootstrap_ci(
    values: &[f64],
    stat: Stat,
    n_boot: usize,
    level: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    if values.len() < 2 || n_boot == 0 || !(level > 0.0 && level < 1.0) || !all_finite(values) {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = values.len();
    let mut sample = vec![0.0; n];
    let mut stats = Vec::with_capacity(n_boot);
    for _ in 0..n_boot {
        for s in sample.iter_mut() {
            *s = values[rng.random_range(0..n)];
        }
        stats.push(stat.apply(&sample)?);
    }
    stats.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Some((
        quantile_sorted(&stats, alpha),
        quantile_sorted(&stats, 1.0 - alpha),
    ))
}

/// Quantile of sorted, non-empty data with linear interpolation between order statistics.
fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

/// Two-sided paired sign-flip permutation test of mean(a - b) = 0.
///
/// For n <= [`EXACT_PAIRED_MAX`] pairs all 2^n sign assignments are enumerated and the exact
/// p-value count / 2^n is returned (the identity is one of them, so p >= 2^-n; `n_perm` is
/// ignored). Otherwise `n_perm` random flips are drawn and p = (count + 1) / (n_perm + 1).
/// `None` for empty or unequal-length input, non-finite values, or `n_perm == 0` when
/// sampling would be needed.
pub fn paired_permutation_test(a: &[f64], b: &[f64], n_perm: usize, seed: u64) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() || !all_finite(a) || !all_finite(b) {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if !all_finite(&d) {
        return None;
    }
    let n = d.len();
    // The sum is equivalent to the mean for a fixed n and avoids a division.
    let observed = d.iter().sum::<f64>().abs();
    let thresh = observed - tie_tolerance(&d);
    if n <= EXACT_PAIRED_MAX {
        let total = 1u32 << n;
        let count = (0..total)
            .filter(|&mask| {
                let s: f64 = d
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| if mask >> i & 1 == 1 { -v } else { v })
                    .sum();
                s.abs() >= thresh
            })
            .count();
        return Some(count as f64 / total as f64);
    }
    if n_perm == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut count = 0usize;
    for _ in 0..n_perm {
        let s: f64 = d
            .iter()
            .map(|&v| if rng.random::<bool>() { -v } else { v })
            .sum();
        if s.abs() >= thresh {
            count += 1;
        }
    }
    Some((count + 1) as f64 / (n_perm + 1) as f64)
}

/// Smallest two-sided p-value the exact sign-flip test can return on data with `n_nonzero`
/// nonzero values, whatever they are: 2^(1 - n). Zero differences flip onto themselves and
/// add nothing, so only the nonzero ones count.
pub fn sign_flip_min_p(n_nonzero: usize) -> f64 {
    if n_nonzero == 0 {
        return 1.0;
    }
    0.5f64.powi(n_nonzero as i32 - 1)
}

/// Why a test of "these values (paired differences, or per-response rho) have mean 0" has no
/// power at level `alpha`, or `None` when it has some. The rule is the test's own floor: with
/// `n` nonzero values the exact sign-flip test cannot go below p = 2^(1 - n) (n <= 5 at
/// alpha = 0.05), and all-zero values (both accuracies at the floor, a CI of width 0) carry
/// no information. Such a comparison is "uninformative": distinct from "inconclusive", which
/// is a test that could have found an effect and did not.
pub fn no_power(values: &[f64], alpha: f64) -> Option<String> {
    if values.is_empty() {
        return Some("no values to compare".into());
    }
    let nonzero = values.iter().filter(|&&d| d != 0.0).count();
    if nonzero == 0 {
        return Some(format!(
            "all {} values are 0 (a CI of width 0): nothing to detect",
            values.len()
        ));
    }
    let floor = sign_flip_min_p(nonzero);
    (floor > alpha).then(|| {
        format!(
            "only {nonzero} of {} values are nonzero: the exact test cannot reach p < {alpha} (its smallest p is {floor:.3})",
            values.len()
        )
    })
}

/// Why [`spearman`] / [`pearson`] of `x` and `y` is undefined, or `None` when it is defined
/// (for listing the responses a mean rho leaves out).
pub fn why_undefined(x: &[f64], y: &[f64]) -> Option<&'static str> {
    if x.len() != y.len() {
        Some("the two sides differ in length")
    } else if x.len() < 3 {
        Some("fewer than 3 points")
    } else if !all_finite(x) || !all_finite(y) {
        Some("a non-finite value")
    } else if is_constant(x) || is_constant(y) {
        Some("one side is constant")
    } else {
        None
    }
}

/// Two-sided unpaired permutation test of mean(a) = mean(b) (labels exchanged at random).
///
/// When the number of distinct splits C(na + nb, na) is at most `n_perm`, all of them are
/// enumerated and the exact p-value count / C is returned; otherwise `n_perm` random
/// relabellings give p = (count + 1) / (n_perm + 1). `None` if either side is empty, any
/// value is non-finite, or `n_perm == 0`.
pub fn permutation_test(a: &[f64], b: &[f64], n_perm: usize, seed: u64) -> Option<f64> {
    if a.is_empty() || b.is_empty() || n_perm == 0 || !all_finite(a) || !all_finite(b) {
        return None;
    }
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let (na, n) = (a.len(), pooled.len());
    let total: f64 = pooled.iter().sum();
    // With the pooled total fixed, the mean difference is a monotone function of sum(a').
    let diff = |sum_a: f64| sum_a / na as f64 - (total - sum_a) / (n - na) as f64;
    let observed = diff(a.iter().sum()).abs();
    if !observed.is_finite() {
        return None;
    }
    let thresh = observed - tie_tolerance(&pooled) / na.min(n - na) as f64;
    if let Some(c) = binomial_at_most(n, na, n_perm as u128) {
        let mut count = 0u128;
        let mut idx: Vec<usize> = (0..na).collect();
        loop {
            let s: f64 = idx.iter().map(|&i| pooled[i]).sum();
            if diff(s).abs() >= thresh {
                count += 1;
            }
            if !next_combination(&mut idx, n) {
                break;
            }
        }
        return Some(count as f64 / c as f64);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut work = pooled.clone();
    let mut count = 0usize;
    for _ in 0..n_perm {
        // Partial Fisher-Yates: only the first na slots need to be a uniform random subset.
        for i in 0..na {
            let j = rng.random_range(i..n);
            work.swap(i, j);
        }
        let s: f64 = work[..na].iter().sum();
        if diff(s).abs() >= thresh {
            count += 1;
        }
    }
    Some((count + 1) as f64 / (n_perm + 1) as f64)
}

/// C(n, k) if it is at most `limit`, else `None` (computed without overflow).
fn binomial_at_most(n: usize, k: usize, limit: u128) -> Option<u128> {
    let k = k.min(n - k);
    let mut c: u128 = 1;
    for i in 0..k {
        // c * (n - i) / (i + 1) stays an integer at every step.
        c = c * (n - i) as u128 / (i + 1) as u128;
        if c > limit {
            return None;
        }
    }
    Some(c)
}

/// Advances `idx` (strictly increasing indices below `n`) to the next k-subset in
/// lexicographic order; false after the last one.
fn next_combination(idx: &mut [usize], n: usize) -> bool {
    let k = idx.len();
    let mut i = k;
    while i > 0 {
        i -= 1;
        if idx[i] < n - k + i {
            idx[i] += 1;
            for j in i + 1..k {
                idx[j] = idx[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

/// Slack for "at least as extreme": permuted sums equal to the observed one in exact
/// arithmetic can differ from it by rounding, and must still count.
fn tie_tolerance(v: &[f64]) -> f64 {
    1e-12 * v.iter().map(|x| x.abs()).sum::<f64>()
}

/// A trend line for a scatter that assumes no functional form: the points (non-finite pairs
/// dropped) are sorted by x and cut into `bins` bins of (near-)equal count; each bin gives
/// (median x, median y). Fewer bins come back when there are fewer points than bins; empty
/// for unequal lengths or `bins == 0`.
pub fn rank_trend(x: &[f64], y: &[f64], bins: usize) -> Vec<(f64, f64)> {
    if x.len() != y.len() || bins == 0 {
        return Vec::new();
    }
    let mut pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(&a, &b)| (a, b))
        .collect();
    pts.sort_by(|p, q| p.0.total_cmp(&q.0));
    let n = pts.len();
    let bins = bins.min(n);
    let mut out = Vec::with_capacity(bins);
    for b in 0..bins {
        let chunk = &pts[b * n / bins..(b + 1) * n / bins];
        let xs: Vec<f64> = chunk.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = chunk.iter().map(|p| p.1).collect();
        if let (Some(mx), Some(my)) = (median(&xs), median(&ys)) {
            out.push((mx, my));
        }
    }
    out
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

fn scaled(v: &[f64]) -> Vec<f64> {
    let m = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    v.iter().map(|x| x / m).collect()
}

fn is_constant(v: &[f64]) -> bool {
    v.iter().all(|&x| x == v[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_enumerate_all_subsets() {
        let mut idx = vec![0, 1];
        let mut seen = vec![idx.clone()];
        while next_combination(&mut idx, 4) {
            seen.push(idx.clone());
        }
        assert_eq!(
            seen,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(binomial_at_most(10, 3, 1000), Some(120));
        assert_eq!(binomial_at_most(10, 3, 119), None);
        assert_eq!(
            binomial_at_most(60, 30, u128::MAX / 100).map(|_| ()),
            Some(())
        );
    }

    #[test]
    fn t_quantiles_match_the_t_distribution() {
        use std::f64::consts::PI;
        // Closed forms: df 1 is Cauchy, tan(pi (p - 1/2)); df 2 is (2p-1) / sqrt(2p(1-p)).
        assert!((T975[0] - (PI * 0.475).tan()).abs() < 1e-4);
        assert!((T975[1] - 0.95 / (2.0 * 0.975 * 0.025f64).sqrt()).abs() < 1e-4);
        // Every df: the density integrated from 0 to the quantile is 0.475. The density's
        // constant G((v+1)/2) / G(v/2) by its recurrence: c(v+2) = c(v) (v+1) / v.
        let mut c = [1.0 / PI.sqrt(), PI.sqrt() / 2.0];
        for (i, &t) in T975.iter().enumerate() {
            let v = (i + 1) as f64;
            let k = c[i % 2] / (v * PI).sqrt();
            let pdf = |x: f64| k * (1.0 + x * x / v).powf(-(v + 1.0) / 2.0);
            let n = 20_000; // Simpson's rule
            let h = t / n as f64;
            let mut area = pdf(0.0) + pdf(t);
            for j in 1..n {
                area += pdf(j as f64 * h) * if j % 2 == 1 { 4.0 } else { 2.0 };
            }
            area *= h / 3.0;
            assert!((area - 0.475).abs() < 2e-5, "df {v}: {area}");
            c[i % 2] *= (v + 1.0) / v;
        }
        // scipy.stats.t.interval(0.95, 2, loc=2, scale=stats.sem([1, 2, 3])) = (-0.484, 4.484)
        let (m, lo, hi) = t_interval(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(m, 2.0);
        assert!(
            (lo + 0.4841).abs() < 1e-3 && (hi - 4.4841).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert!(t_interval(&[1.0]).is_none());
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.quantile([1,2,3,4], [0.025, 0.5, 0.975]) = [1.075, 2.5, 3.925]
        assert!((quantile_sorted(&v, 0.025) - 1.075).abs() < 1e-12);
        assert!((quantile_sorted(&v, 0.5) - 2.5).abs() < 1e-12);
        assert!((quantile_sorted(&v, 0.975) - 3.925).abs() < 1e-12);
    }

    #[test]
    fn no_power_follows_the_exact_tests_floor() {
        // Both accuracies at the floor: every paired difference 0.
        assert!(no_power(&[0.0; 40], 0.05).unwrap().contains("width 0"));
        assert!(no_power(&[], 0.05).is_some());
        // Five nonzero differences: the exact test's smallest p is 2^-4 = 0.0625 > 0.05 ...
        let five = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0];
        assert!(no_power(&five, 0.05).unwrap().contains("only 5 of 7"));
        let d: Vec<f64> = five.iter().map(|x| -x).collect();
        let p = paired_permutation_test(&d, &[0.0; 7], 0, 0).unwrap();
        assert!((p - sign_flip_min_p(5)).abs() < 1e-12 && p > 0.05, "p {p}");
        // ... six can reach 2^-5 = 0.031, so the comparison has power.
        let six = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        assert!(no_power(&six, 0.05).is_none());
        let p = paired_permutation_test(&six, &[0.0; 7], 0, 0).unwrap();
        assert!((p - sign_flip_min_p(6)).abs() < 1e-12 && p < 0.05, "p {p}");
    }

    #[test]
    fn why_undefined_matches_spearman() {
        let cases: [(&[f64], &[f64]); 5] = [
            (&[1.0, 2.0], &[2.0, 1.0]),
            (&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0]),
            (&[1.0, f64::NAN, 3.0], &[1.0, 2.0, 3.0]),
            (&[1.0, 2.0, 3.0], &[1.0, 2.0]),
            (&[1.0, 2.0, 3.0], &[3.0, 1.0, 2.0]),
        ];
        for (x, y) in cases {
            assert_eq!(
                why_undefined(x, y).is_none(),
                spearman(x, y).is_some(),
                "{x:?} {y:?}"
            );
        }
    }
}
