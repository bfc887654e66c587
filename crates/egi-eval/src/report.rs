//! An evaluation's numbers from its sample rows (the lines of `samples.jsonl`: problem id,
//! sample index, verdict, extraction method, finish reason, ...): Pass@1 and unbiased
//! Pass@k with CIs, the verdict counts and breakdowns that explain a score, and the paired
//! comparison of two runs on the problems they share.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use crate::data::Problem;
use crate::metrics::{estimate, pass_at_k};

/// Correct samples per problem id.
fn correct_per_problem(rows: &[Value]) -> BTreeMap<&str, usize> {
    let mut correct: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        let e = correct
            .entry(r["problem_id"].as_str().unwrap_or(""))
            .or_default();
        if r["verdict"] == "correct" {
            *e += 1;
        }
    }
    correct
}

/// Pass@1 of every problem (its fraction of correct samples out of `n`), in problem order.
fn pass1(rows: &[Value], problems: &[Problem], n: usize) -> Vec<f64> {
    let correct = correct_per_problem(rows);
    problems
        .iter()
        .map(|p| correct.get(p.id.as_str()).copied().unwrap_or(0) as f64 / n as f64)
        .collect()
}

/// `per_problem_pass@1` of `summary.json`: problem id -> Pass@1.
pub fn per_problem_pass1(rows: &[Value], problems: &[Problem], n: usize) -> Map<String, Value> {
    problems
        .iter()
        .zip(pass1(rows, problems, n))
        .map(|(p, v)| (p.id.clone(), json!(v)))
        .collect()
}

/// `metrics` of `summary.json`: pass@1 and pass@k for each of `ks` (unbiased estimator from
/// `n` samples per problem), each with its bootstrap CI over problems (`bootstrap`
/// resamples) and, for Pass@1, Wilson's interval.
pub fn metrics(
    rows: &[Value],
    problems: &[Problem],
    n: usize,
    ks: &[usize],
    bootstrap: usize,
) -> Map<String, Value> {
    let correct = correct_per_problem(rows);
    let mut m = Map::new();
    m.insert(
        "pass@1".into(),
        json!(estimate(&pass1(rows, problems, n), bootstrap, 0)),
    );
    for &k in ks {
        let v: Vec<f64> = problems
            .iter()
            .map(|p| {
                pass_at_k(n, correct.get(p.id.as_str()).copied().unwrap_or(0), k).unwrap_or(0.0)
            })
            .collect();
        m.insert(format!("pass@{k}"), json!(estimate(&v, bootstrap, 0)));
    }
    m
}

/// Samples per verdict (correct, wrong, unparsable_answer, unparsable_gold).
pub fn verdict_counts(rows: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in rows {
        *counts
            .entry(r["verdict"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    counts
}

/// Samples and correct ones per value of the row field `key` (`extract_method`,
/// `finish_reason`; `missing` when absent): what explains a 0% at a glance.
pub fn breakdown(rows: &[Value], key: &str, missing: &str) -> BTreeMap<String, Value> {
    let mut t: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in rows {
        let e = t
            .entry(r[key].as_str().unwrap_or(missing).to_string())
            .or_default();
        e.0 += 1;
        e.1 += usize::from(r["verdict"] == "correct");
    }
    t.into_iter()
        .map(|(k, (n, c))| (k, json!({"samples": n, "correct": c})))
        .collect()
}

/// Paired comparison of two runs' `summary.json` (`run` against `baseline`) on the problems
/// both evaluated: Pass@1 of each, the mean per-problem difference with its bootstrap CI,
/// the paired sign-flip permutation p, how many problems differ, and why the comparison has
/// no power when it has none.
pub fn compare(baseline: &Value, run: &Value) -> Result<Value> {
    let (pa, pb) = (&baseline["per_problem_pass@1"], &run["per_problem_pass@1"]);
    let (mut xa, mut xb) = (vec![], vec![]);
    for (id, v) in pa.as_object().into_iter().flatten() {
        if let (Some(x), Some(y)) = (v.as_f64(), pb.get(id).and_then(|y| y.as_f64())) {
            xa.push(x);
            xb.push(y);
        }
    }
    if xa.is_empty() {
        bail!("the two runs share no problems");
    }
    use egi_report::stats;
    let diff: Vec<f64> = xb.iter().zip(&xa).map(|(y, x)| y - x).collect();
    Ok(json!({
        "shared_problems": xa.len(),
        "pass@1_run": stats::mean(&xb), "pass@1_baseline": stats::mean(&xa),
        "mean_difference": stats::mean(&diff).unwrap_or(0.0),
        "difference_ci95": stats::bootstrap_ci(&diff, stats::Stat::Mean, 2000, 0.95, 0).map(|(l, h)| [l, h]),
        "p_value": stats::paired_permutation_test(&xb, &xa, 10_000, 0),
        // Problems on which the two runs differ: the only ones that carry information.
        "differing_problems": diff.iter().filter(|&&x| x != 0.0).count(),
        "uninformative": stats::no_power(&diff, 0.05),
    }))
}
