//! `egi data arith` end to end: the file it writes, determinism, and its errors. No model needed.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn arith(out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egi"))
        .args(["data", "arith", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn arith_writes_deterministic_problem_answer_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("sub/a.jsonl");
    let o = arith(&a, &["--n", "120", "--seed", "5", "--steps", "1..3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(
        msg.contains("wrote 120 problems") && msg.contains("with 2 steps"),
        "{msg}"
    );

    let text = std::fs::read_to_string(&a).unwrap();
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 120);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["id"], format!("arith-5-{i}"));
        assert!(r["problem"].as_str().unwrap().ends_with('?'));
        let ans: u64 = r["answer"].as_str().unwrap().parse().unwrap();
        assert_eq!(ans.to_string(), r["answer"].as_str().unwrap());
        let k = r["steps"].as_u64().unwrap();
        assert!((1..=3).contains(&k));
        assert_eq!(
            r["expression"].as_str().unwrap().matches('(').count() as u64,
            k
        );
        assert!(r["scenario"].is_string());
    }

    // Same options, same bytes; another seed, another file.
    let b = tmp.path().join("b.jsonl");
    assert!(arith(&b, &["--n", "120", "--seed", "5"]).status.success());
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let c = tmp.path().join("c.jsonl");
    assert!(arith(&c, &["--n", "120", "--seed", "6"]).status.success());
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());

    // Knobs reach the generator.
    let d = tmp.path().join("d.jsonl");
    let o = arith(
        &d,
        &[
            "--n",
            "40",
            "--steps",
            "2",
            "--ops",
            "add,mul",
            "--scenarios",
            "bus,prices",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for l in std::fs::read_to_string(&d).unwrap().lines() {
        let r: Value = serde_json::from_str(l).unwrap();
        assert_eq!(r["steps"], 2);
        let e = r["expression"].as_str().unwrap();
        assert!(!e.contains('-') && !e.contains('/'), "{e}");
        assert!(["bus", "prices"].contains(&r["scenario"].as_str().unwrap()));
    }
}

#[test]
fn arith_solutions_add_a_field_and_keep_the_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.jsonl"), tmp.path().join("b.jsonl"));
    let o = arith(
        &a,
        &["--n", "60", "--seed", "2", "--steps", "1..4", "--solutions"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(arith(&b, &["--n", "60", "--seed", "2", "--steps", "1..4"])
        .status
        .success());
    let read = |p: &Path| -> Vec<Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    for (mut w, p) in read(&a).into_iter().zip(read(&b)) {
        let sol = w["solution"].as_str().unwrap().to_string();
        let steps = w["steps"].as_u64().unwrap() as usize;
        assert_eq!(sol.lines().count(), steps + 1, "{sol}");
        let boxed = format!("\\boxed{{{}}}", w["answer"].as_str().unwrap());
        assert!(sol.lines().last().unwrap().contains(&boxed), "{sol}");
        w.as_object_mut().unwrap().remove("solution");
        assert_eq!(w, p);
    }
}

#[test]
fn arith_refuses_bad_options_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.jsonl");
    for (args, want) in [
        (&["--steps", "0..9"][..], "--steps"),
        (&["--steps", "two"][..], "MIN..MAX"),
        (&["--ops", "add,pow"][..], "unknown operation \"pow\""),
        (&["--scenarios", "dragons"][..], "unknown scenario"),
    ] {
        let o = arith(&out, args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} wrote a file");
    }
}
