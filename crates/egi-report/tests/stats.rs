//! Statistics against independently computed values (scipy 1.17.1 `spearmanr`, `pearsonr`,
//! `rankdata`) and the PyTorch reference fixture; bootstrap and permutation-test behaviour.

use std::path::PathBuf;

use egi_report::stats::{
    average_ranks, bootstrap_ci, mean, median, paired_permutation_test, pearson, permutation_test,
    rank_trend, spearman, Stat, EXACT_PAIRED_MAX,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// (x, y, scipy spearmanr, scipy pearsonr)
fn scipy_cases() -> Vec<(Vec<f64>, Vec<f64>, f64, f64)> {
    vec![
        (
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
            vec![5.0, 6.0, 7.0, 8.0, 7.0],
            0.8207826816681233,
            0.8320502943378436,
        ),
        // Ties on both sides.
        (
            vec![1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0],
            vec![2.0, 1.0, 4.0, 3.0, 3.0, 5.0, 6.0],
            0.717492166446893,
            0.7241513386650076,
        ),
        (
            vec![0.5, 0.5, 0.5, 1.5, 2.5, 2.5],
            vec![3.2, 1.1, 1.1, 0.4, 0.4, -2.0],
            -0.9057894597833127,
            -0.7647748927656911,
        ),
        (
            vec![2.67, 0.31, 1.05, 3.9, 0.02, 0.77, 2.2, 1.6, 0.95, 3.1],
            vec![24.1, 30.5, 27.2, 19.8, 41.0, 26.3, 22.0, 25.1, 29.9, 20.4],
            -0.9515151515151514,
            -0.8474707822209967,
        ),
        (
            vec![1.0, 2.0, 3.0],
            vec![3.0, 1.0, 2.0],
            -0.5,
            -0.4999999999999999,
        ),
    ]
}

#[test]
fn correlations_match_scipy() {
    for (x, y, rs, rp) in scipy_cases() {
        let s = spearman(&x, &y).unwrap();
        let p = pearson(&x, &y).unwrap();
        assert!(close(s, rs, 1e-12), "spearman {s} vs scipy {rs} on {x:?}");
        assert!(close(p, rp, 1e-12), "pearson {p} vs scipy {rp} on {x:?}");
        // Symmetric in its arguments.
        assert!(close(spearman(&y, &x).unwrap(), rs, 1e-12));
    }
}

#[test]
fn average_ranks_match_scipy_rankdata() {
    let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0];
    let expected = [4.5, 1.5, 6.0, 1.5, 8.0, 11.0, 3.0, 10.0, 8.0, 4.5, 8.0];
    assert_eq!(average_ranks(&x), expected);
    assert!(average_ranks(&[]).is_empty());
    assert_eq!(average_ranks(&[7.0, 7.0, 7.0]), [2.0, 2.0, 2.0]);
}

#[test]
fn correlations_undefined_cases_are_none() {
    let ok = [1.0, 2.0, 3.0, 4.0];
    let none_cases: Vec<(Vec<f64>, Vec<f64>, &str)> = vec![
        (vec![1.0, 2.0], vec![2.0, 1.0], "two points"),
        (vec![], vec![], "empty"),
        (ok.to_vec(), vec![1.0, 2.0, 3.0], "length mismatch"),
        (ok.to_vec(), vec![5.0, 5.0, 5.0, 5.0], "constant y"),
        (
            vec![0.1; 4],
            ok.to_vec(),
            "constant x (0.1 is not exact in binary)",
        ),
        (ok.to_vec(), vec![1.0, f64::NAN, 3.0, 4.0], "NaN"),
        (vec![1.0, 2.0, f64::INFINITY, 4.0], ok.to_vec(), "infinity"),
    ];
    for (x, y, why) in none_cases {
        assert_eq!(spearman(&x, &y), None, "spearman: {why}");
        assert_eq!(pearson(&x, &y), None, "pearson: {why}");
    }
    // Extreme magnitudes neither overflow nor underflow (r is scale-invariant).
    let y = [1.0, 2.0, 3.0];
    let r = pearson(&[1.0, -1.0, 3.0], &y).unwrap();
    assert!(close(
        pearson(&[1e200, -1e200, 3e200], &y).unwrap(),
        r,
        1e-12
    ));
    assert!(close(
        pearson(&[1e-200, -1e-200, 3e-200], &y).unwrap(),
        r,
        1e-12
    ));
    assert!(close(
        spearman(&[1e200, -1e200, 3e200], &y).unwrap(),
        0.5,
        1e-12
    ));
    // Perfect (anti)correlation stays within [-1, 1].
    assert!(close(
        spearman(&ok, &[8.0, 6.0, 4.0, 2.0]).unwrap(),
        -1.0,
        1e-15
    ));
}

fn test_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-data")
}

fn column(items: &serde_json::Value, key: &str) -> Vec<f64> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[key].as_f64().unwrap())
        .collect()
}

#[test]
fn spearman_matches_pytorch_fixture() {
    let path = test_data().join("reference/smollm2_public.json");
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let e = column(&case["tokens"], "entropy");
        let i = column(&case["tokens"], "influence");
        let rho = spearman(&e, &i).unwrap();
        let want = case["rho_token"].as_f64().unwrap();
        assert!(close(rho, want, 1e-9), "{id}: token rho {rho} vs {want}");

        let e = column(&case["steps"], "entropy");
        let i = column(&case["steps"], "influence");
        let rho = spearman(&e, &i).unwrap();
        let want = case["rho_step"].as_f64().unwrap();
        assert!(close(rho, want, 1e-9), "{id}: step rho {rho} vs {want}");
    }
}

#[test]
fn mean_and_median() {
    assert_eq!(mean(&[]), None);
    assert_eq!(median(&[]), None);
    assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
    assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(Stat::Median.apply(&[9.0]), Some(9.0));
}

fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Sum of uniforms: roughly normal, sd ~ 0.58.
    (0..n)
        .map(|_| (0..4).map(|_| rng.random_range(-0.5..0.5)).sum::<f64>())
        .collect()
}

#[test]
fn bootstrap_ci_contains_estimate_narrows_and_is_deterministic() {
    let small: Vec<f64> = noise(20, 1).iter().map(|v| v + 3.0).collect();
    let large: Vec<f64> = noise(500, 2).iter().map(|v| v + 3.0).collect();
    for stat in [Stat::Mean, Stat::Median] {
        let (lo_s, hi_s) = bootstrap_ci(&small, stat, 2000, 0.95, 7).unwrap();
        let (lo_l, hi_l) = bootstrap_ci(&large, stat, 2000, 0.95, 7).unwrap();
        let est_s = stat.apply(&small).unwrap();
        let est_l = stat.apply(&large).unwrap();
        assert!(
            lo_s < est_s && est_s < hi_s,
            "{stat:?} {lo_s} {est_s} {hi_s}"
        );
        assert!(
            lo_l < est_l && est_l < hi_l,
            "{stat:?} {lo_l} {est_l} {hi_l}"
        );
        // 25x the data: about 5x narrower; demand at least 2.5x.
        assert!(
            (hi_l - lo_l) * 2.5 < hi_s - lo_s,
            "{stat:?}: {} vs {}",
            hi_l - lo_l,
            hi_s - lo_s
        );
        // Same seed, same interval.
        assert_eq!(
            bootstrap_ci(&small, stat, 2000, 0.95, 7),
            bootstrap_ci(&small, stat, 2000, 0.95, 7)
        );
    }
    // Another seed gives other resamples (a median's CI can coincide: it takes few values).
    assert_ne!(
        bootstrap_ci(&small, Stat::Mean, 2000, 0.95, 7),
        bootstrap_ci(&small, Stat::Mean, 2000, 0.95, 8)
    );
    // A 95% CI of the mean of n = 500 with sd ~0.58 is about ±0.05.
    let (lo, hi) = bootstrap_ci(&large, Stat::Mean, 2000, 0.95, 7).unwrap();
    assert!((0.06..0.14).contains(&(hi - lo)), "width {}", hi - lo);
    // A higher level gives a wider interval from the same resamples.
    let (lo99, hi99) = bootstrap_ci(&large, Stat::Mean, 2000, 0.99, 7).unwrap();
    assert!(lo99 < lo && hi < hi99);
}

#[test]
fn bootstrap_ci_edge_cases() {
    assert_eq!(bootstrap_ci(&[1.0], Stat::Mean, 100, 0.95, 0), None);
    assert_eq!(bootstrap_ci(&[], Stat::Mean, 100, 0.95, 0), None);
    assert_eq!(bootstrap_ci(&[1.0, 2.0], Stat::Mean, 0, 0.95, 0), None);
    assert_eq!(bootstrap_ci(&[1.0, 2.0], Stat::Mean, 100, 1.0, 0), None);
    assert_eq!(
        bootstrap_ci(&[1.0, 2.0], Stat::Mean, 100, f64::NAN, 0),
        None
    );
    assert_eq!(
        bootstrap_ci(&[1.0, f64::NAN], Stat::Mean, 100, 0.9, 0),
        None
    );
    assert_eq!(
        bootstrap_ci(&[2.5; 10], Stat::Median, 100, 0.95, 0),
        Some((2.5, 2.5))
    );
}

/// Brute force by recursion (independent of the bitmask loop in the library).
fn brute_force_paired(d: &[f64]) -> f64 {
    fn rec(d: &[f64], acc: f64, out: &mut Vec<f64>) {
        match d.split_first() {
            None => out.push(acc),
            Some((&v, rest)) => {
                rec(rest, acc + v, out);
                rec(rest, acc - v, out);
            }
        }
    }
    let mut sums = Vec::new();
    rec(d, 0.0, &mut sums);
    let obs: f64 = d.iter().sum::<f64>().abs();
    let hits = sums.iter().filter(|s| s.abs() >= obs - 1e-9).count();
    hits as f64 / sums.len() as f64
}

#[test]
fn paired_exact_enumeration_matches_brute_force() {
    // All differences positive: only the identity and the full flip are as extreme.
    let a = [2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [1.0; 5];
    assert_eq!(paired_permutation_test(&a, &b, 0, 0), Some(2.0 / 32.0));

    for n in [3usize, 8, EXACT_PAIRED_MAX] {
        let a = noise(n, 10 + n as u64);
        let b: Vec<f64> = noise(n, 20 + n as u64).iter().map(|v| v - 0.3).collect();
        let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        let p = paired_permutation_test(&a, &b, 10, 0).unwrap();
        assert_eq!(p, brute_force_paired(&d), "n = {n}");
        // Exact: the seed and n_perm are irrelevant.
        assert_eq!(paired_permutation_test(&a, &b, 999, 5), Some(p));
    }
    // Integer differences with many exactly tied sums.
    let a = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0];
    let b = [0.0; 7];
    let p = paired_permutation_test(&a, &b, 0, 0).unwrap();
    assert_eq!(p, brute_force_paired(&a));
}

#[test]
fn paired_test_detects_shift_and_accepts_null() {
    let base = noise(30, 3);
    let a: Vec<f64> = base
        .iter()
        .zip(noise(30, 4))
        .map(|(x, e)| x + 0.3 * e + 0.8)
        .collect();
    let p = paired_permutation_test(&a, &base, 9999, 1).unwrap();
    assert!(p < 0.01, "shifted: p = {p}");
    // With no exceedance at all, p is exactly the +1-corrected floor.
    assert_eq!(p, 1.0 / 10000.0);

    let a = noise(30, 5);
    let b = noise(30, 6);
    let p = paired_permutation_test(&a, &b, 9999, 1).unwrap();
    assert!(p > 0.2, "null: p = {p}");
    assert_eq!(paired_permutation_test(&a, &b, 9999, 1), Some(p));

    // Calibration under the null: about 5% of data sets reject at 0.05.
    let rejections = (0..200u64)
        .filter(|s| {
            let a = noise(20, 1000 + s);
            let b = noise(20, 5000 + s);
            paired_permutation_test(&a, &b, 999, *s).unwrap() < 0.05
        })
        .count();
    assert!(
        (3..=20).contains(&rejections),
        "{rejections}/200 rejections"
    );
}

#[test]
fn paired_test_edge_cases() {
    assert_eq!(paired_permutation_test(&[], &[], 100, 0), None);
    assert_eq!(paired_permutation_test(&[1.0], &[1.0, 2.0], 100, 0), None);
    assert_eq!(paired_permutation_test(&[f64::NAN], &[1.0], 100, 0), None);
    // Sampling needed (n > 12) but no permutations requested.
    assert_eq!(paired_permutation_test(&[1.0; 13], &[0.0; 13], 0, 0), None);
    // No difference at all: nothing is more extreme than nothing.
    assert_eq!(
        paired_permutation_test(&[1.0; 20], &[1.0; 20], 99, 0),
        Some(1.0)
    );
}

#[test]
fn unpaired_permutation_test() {
    // C(6, 3) = 20 splits, two as extreme as the observed one: exact p = 0.1.
    assert_eq!(
        permutation_test(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 20, 0),
        Some(0.1)
    );
    // Fewer permutations than splits: Monte Carlo with the +1 correction.
    let p = permutation_test(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 19, 0).unwrap();
    assert!(p > 0.05 && p < 0.3, "{p}");
    assert_eq!(p * 20.0, (p * 20.0).round(), "p = (count + 1) / 20");

    let a: Vec<f64> = noise(40, 7).iter().map(|v| v + 0.7).collect();
    let b = noise(35, 8);
    let p = permutation_test(&a, &b, 4999, 2).unwrap();
    assert!(p < 0.01, "shifted: {p}");
    let p = permutation_test(&noise(40, 9), &noise(35, 10), 4999, 2).unwrap();
    assert!(p > 0.2, "null: {p}");

    assert_eq!(permutation_test(&[], &[1.0], 10, 0), None);
    assert_eq!(permutation_test(&[1.0], &[2.0], 0, 0), None);
    assert_eq!(permutation_test(&[1.0, f64::INFINITY], &[2.0], 10, 0), None);
}

#[test]
fn rank_trend_bins() {
    let x: Vec<f64> = (1..=6).map(f64::from).collect();
    let y: Vec<f64> = x.iter().map(|v| v * 10.0).collect();
    assert_eq!(
        rank_trend(&x, &y, 3),
        vec![(1.5, 15.0), (3.5, 35.0), (5.5, 55.0)]
    );
    // Unsorted input, NaN dropped, more bins than points.
    let x = [3.0, f64::NAN, 1.0, 2.0];
    let y = [30.0, 5.0, 10.0, 20.0];
    assert_eq!(
        rank_trend(&x, &y, 10),
        vec![(1.0, 10.0), (2.0, 20.0), (3.0, 30.0)]
    );
    // A decreasing cloud gives a decreasing trend.
    let e = noise(300, 11);
    let i: Vec<f64> = e
        .iter()
        .zip(noise(300, 12))
        .map(|(x, n)| -2.0 * x + n)
        .collect();
    let t = rank_trend(&e, &i, 8);
    assert_eq!(t.len(), 8);
    assert!(
        t.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 < w[0].1),
        "{t:?}"
    );
    assert!(rank_trend(&x, &y, 0).is_empty());
    assert!(rank_trend(&[1.0], &[1.0, 2.0], 2).is_empty());
    assert!(rank_trend(&[], &[], 3).is_empty());
}
