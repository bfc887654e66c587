//! `egi eval` and `egi verify` end to end on the default model and GSM8K as bundled with egi,
//! run from an empty folder (nothing beside the binary but the model cache).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn egi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egi"))
}

fn eval(out: &Path, extra: &[&str]) -> std::process::Output {
    egi()
        .args([
            "eval",
            "--model",
            "default",
            "--bench",
            "gsm8k",
            "--limit",
            "3",
            "--max-new-tokens",
            "48",
        ])
        .current_dir(out.parent().unwrap())
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn eval_writes_samples_and_summary_and_compares() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("greedy");
    let o = eval(&g, &["--greedy"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(g.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["problems"], 3);
    assert_eq!(s["file"], "bundled:gsm8k");
    assert_eq!(
        s["data_sha256"],
        "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"
    );
    let p1 = &s["metrics"]["pass@1"];
    let m = p1["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&m));
    let samples: Vec<Value> = std::fs::read_to_string(g.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 3);
    // The verdicts broken down by how the answer was taken and how generation ended, each
    // adding up to all samples and to the correct ones.
    let correct = samples.iter().filter(|r| r["verdict"] == "correct").count() as u64;
    for key in ["by_extraction", "by_finish_reason"] {
        let t = s[key]
            .as_object()
            .unwrap_or_else(|| panic!("{key} missing: {s}"));
        let total: u64 = t.values().map(|v| v["samples"].as_u64().unwrap()).sum();
        let right: u64 = t.values().map(|v| v["correct"].as_u64().unwrap()).sum();
        assert_eq!((total, right), (3, correct), "{key}: {t:?}");
    }
    for r in &samples {
        let m = r["extract_method"].as_str().unwrap_or("none");
        assert!(
            s["by_extraction"][m]["samples"].as_u64().unwrap() >= 1,
            "{m}"
        );
        let f = r["finish_reason"].as_str().unwrap();
        assert!(["eos", "stop", "length"].contains(&f), "{f}");
        assert!(
            s["by_finish_reason"][f]["samples"].as_u64().unwrap() >= 1,
            "{f}"
        );
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("answer taken by:") && stdout.contains("generation ended by:"),
        "{stdout}"
    );
    for r in &samples {
        assert!(["correct", "wrong", "unparsable_answer", "unparsable_gold"]
            .contains(&r["verdict"].as_str().unwrap()));
        assert!(r["tokens"].as_u64().unwrap() <= 48);
    }
    // Greedy is deterministic: the same run twice gives the same samples.
    let g2 = tmp.path().join("greedy2");
    assert!(eval(&g2, &["--greedy"]).status.success());
    assert_eq!(
        std::fs::read_to_string(g.join("samples.jsonl")).unwrap(),
        std::fs::read_to_string(g2.join("samples.jsonl")).unwrap()
    );
    // Sampled with n = 2 and Pass@2.
    let sm = tmp.path().join("sampled");
    let o = eval(&sm, &["--n", "2", "--k", "1,2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(sm.join("summary.json")).unwrap()).unwrap();
    let (a, b) = (
        s["metrics"]["pass@1"]["mean"].as_f64().unwrap(),
        s["metrics"]["pass@2"]["mean"].as_f64().unwrap(),
    );
    assert!(b >= a);
    let o = egi()
        .args(["eval", "compare"])
        .arg(&g)
        .arg(&sm)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 shared problems"));
    // A run compared with itself: every difference is 0, so the comparison is uninformative
    // (not "inconclusive"), in the JSON and on screen.
    let same = tmp.path().join("same.json");
    let o = egi()
        .args(["eval", "compare"])
        .arg(&g)
        .arg(&g2)
        .arg("--out")
        .arg(&same)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("uninformative: all 3 values are 0"));
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&same).unwrap()).unwrap();
    assert_eq!(c["differing_problems"], 0);
    assert!(c["uninformative"].as_str().unwrap().contains("width 0"));
    // Interrupted after one batch of one problem, then resumed: same samples as uninterrupted.
    let r = tmp.path().join("resumed");
    let o = eval(&r, &["--greedy", "--batch", "1", "--stop-after", "1"]);
    assert!(o.status.success());
    assert!(r.join("samples.partial.jsonl").exists() && !r.join("samples.jsonl").exists());
    let o = eval(&r, &["--greedy", "--batch", "1"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming: 1 problems already done"));
    let r1 = tmp.path().join("batch1");
    assert!(eval(&r1, &["--greedy", "--batch", "1"]).status.success());
    assert_eq!(
        std::fs::read_to_string(r1.join("samples.jsonl")).unwrap(),
        std::fs::read_to_string(r.join("samples.jsonl")).unwrap()
    );
    // Bad k.
    let o = eval(&tmp.path().join("bad"), &["--n", "2", "--k", "4"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--k 4"));
}

#[test]
fn verify_command_single_and_file() {
    let o = egi()
        .args([
            "verify",
            "--answer",
            "so the total is \\boxed{\\frac{1}{2}}",
            "--gold",
            "0.5",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    assert_eq!(v["verdict"], "correct");
    // The exit status tells the verdict (3 wrong, 4 unparsable answer, 5 unparsable gold),
    // unless --exit-zero.
    for (answer, gold, status, verdict) in [
        ("The answer is 5.", "6", 3, "wrong"),
        ("", "6", 4, "unparsable_answer"),
        ("\\boxed{3}", "\\frac{", 5, "unparsable_gold"),
    ] {
        let o = egi()
            .args(["verify", "--answer", answer, "--gold", gold])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(status), "{answer} / {gold}");
        let v: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        assert_eq!(v["verdict"], verdict);
        let o = egi()
            .args(["verify", "--exit-zero", "--answer", answer, "--gold", gold])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("v.jsonl");
    std::fs::write(&input, "{\"answer\": \"#### 72\", \"gold\": \"72\"}\n{\"answer\": \"The answer is 5.\", \"gold\": \"6\"}\n").unwrap();
    let out = tmp.path().join("o.jsonl");
    let o = egi()
        .args(["verify", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["verdict"], "correct");
    assert_eq!(rows[1]["verdict"], "wrong");
    assert_eq!(rows[1]["extracted"], "5");
}

#[test]
fn bundled_data_is_listed_and_exported_from_an_empty_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let o = egi()
        .args(["data", "list", "--json"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sets: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, u64)> = sets
        .iter()
        .map(|s| {
            assert!(!s["license"].as_str().unwrap().is_empty());
            assert!(s["source"].as_str().unwrap().contains('@'));
            (
                s["name"].as_str().unwrap().into(),
                s["problems"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("gsm8k", 1319),
        ("math500", 500),
        ("aime24", 30),
        ("aime25", 30),
        ("amc23", 40),
        ("gsm8k-train", 7473),
    ];
    assert_eq!(
        got,
        want.map(|(n, c)| (n.to_string(), c)).to_vec(),
        "egi data list"
    );
    let table = egi()
        .args(["data", "list"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("MIT (OpenAI)"));
    // export writes the bundled bytes, identical to the file in the repository
    let f = tmp.path().join("aime24.jsonl");
    let o = egi()
        .args(["data", "export", "aime24", "--out"])
        .arg(&f)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../egi-eval/data/aime24/test.jsonl");
    assert_eq!(std::fs::read(&f).unwrap(), std::fs::read(repo).unwrap());
    let o = egi().args(["data", "export", "gsm9k"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("gsm8k, math500"));
}
