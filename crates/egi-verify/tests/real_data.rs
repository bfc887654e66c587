//! Self-consistency on real benchmark files: the sets egi bundles (crates/egi-eval/data) and
//! the test-only one in test-data/ (AIME 2025's second source). Read by path: egi-verify does not depend on egi-eval.

use egi_verify::{gold_from_record, verify, Options, Status};
use std::path::PathBuf;

fn data(rel: &str) -> Vec<serde_json::Value> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let p = [root.join("../egi-eval/data"), root.join("../../test-data")]
        .into_iter()
        .map(|d| d.join(rel))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{rel}: in neither crates/egi-eval/data nor test-data"));
    std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid jsonl"))
        .collect()
}

#[test]
fn math500_solution_matches_answer() {
    let recs = data("math500/test.jsonl");
    let opts = Options::default();
    let mut bad = Vec::new();
    let mut methods = std::collections::BTreeMap::new();
    for r in &recs {
        let sol = r["solution"].as_str().unwrap();
        let ans = gold_from_record(r).expect("answer present");
        let v = verify(sol, &ans, &opts);
        *methods
            .entry(v.method.clone().unwrap_or_default())
            .or_insert(0) += 1;
        if v.status != Status::Correct {
            bad.push((r["unique_id"].as_str().unwrap_or("?").to_string(), ans, v));
        }
    }
    let rate = 1.0 - bad.len() as f64 / recs.len() as f64;
    println!(
        "MATH-500 self-consistency: {}/{} = {:.2}%",
        recs.len() - bad.len(),
        recs.len(),
        rate * 100.0
    );
    println!("deciding rules: {methods:?}");
    for (id, ans, v) in &bad {
        println!(
            "  exception {id}: gold {ans:?} -> {:?} extracted {:?} norm {:?} vs {:?}",
            v.status,
            v.extracted.as_ref().map(|e| &e.text),
            v.answer_normalized,
            v.gold_normalized
        );
    }
    assert_eq!(recs.len(), 500);
    assert!(rate >= 0.99, "self-consistency {rate}");
}

fn golds_parse(rel: &str, expect_n: Option<usize>) {
    let recs = data(rel);
    if let Some(n) = expect_n {
        assert_eq!(recs.len(), n, "{rel}");
    }
    let opts = Options::default();
    let mut failures = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let g = gold_from_record(r).unwrap_or_else(|| panic!("{rel}:{i} has no gold"));
        let v = verify(&g, &g, &opts);
        if v.status != Status::Correct {
            failures.push((i, g.clone(), v.status));
        }
        // the gold also parses structurally (not only by string identity):
        // against a different, well-formed answer it must not be UnparsableGold
        let w = verify("\\boxed{987654321}", &g, &opts);
        if w.status != Status::Wrong {
            failures.push((i, g, w.status));
        }
    }
    println!("{rel}: {} golds, {} failures", recs.len(), failures.len());
    assert!(failures.is_empty(), "{rel}: {failures:?}");
}

#[test]
fn gsm8k_golds_parse() {
    golds_parse("gsm8k/test.jsonl", Some(1319));
    let recs = data("gsm8k/test.jsonl");
    for r in &recs {
        let g = gold_from_record(r).unwrap();
        assert!(!g.contains(','), "thousands commas stripped: {g}");
        assert!(g.parse::<f64>().is_ok(), "gsm8k gold is a number: {g}");
        // the full GSM8K solution text verifies against its own gold
        let v = verify(r["answer"].as_str().unwrap(), &g, &Options::default());
        assert_eq!(v.status, Status::Correct, "{g}");
    }
}

#[test]
fn aime24_golds_parse() {
    golds_parse("aime24/test.jsonl", Some(30));
}

#[test]
fn aime25_golds_parse() {
    golds_parse("aime25/test.jsonl", Some(30));
    golds_parse("aime25/test.alt_math-evaluation-harness.jsonl", None);
}

#[test]
fn amc23_golds_parse() {
    golds_parse("amc23/test.jsonl", Some(40));
    let recs = data("amc23/test.jsonl");
    for r in &recs {
        let g = gold_from_record(r).unwrap();
        assert!(
            !g.ends_with(".0"),
            "AMC float gold rendered as integer: {g}"
        );
    }
}

#[test]
fn math500_golds_parse_against_themselves() {
    golds_parse("math500/test.jsonl", Some(500));
}
