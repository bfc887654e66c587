//! `egi fingerprint` on the real default model: equal to the PyTorch fixture, resumable,
//! clear about bad input, and `compare` runs its paired test.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn egi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egi"))
}

fn fixture() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/reference/smollm2_public.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn run(args: &[&str], input: &Path, out: &Path) -> std::process::Output {
    egi()
        .arg("fingerprint")
        .args(["--model", "default", "--input"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn fingerprint_matches_pytorch_fixture() {
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let lines: Vec<String> = cases
        .iter()
        .map(|c| {
            serde_json::json!({"id": c["id"], "prompt": c["prompt"], "response": c["response"]})
                .to_string()
        })
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = tmp.path().join("fp");
    let o = run(&["--per-matrix"], &input, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = read_jsonl(&out.join("responses.jsonl"));
    assert_eq!(got.len(), cases.len());
    let mut worst = 0f64;
    for (g, c) in got.iter().zip(cases) {
        assert_eq!(g["id"], c["id"]);
        for (a, b) in g["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .zip(c["tokens"].as_array().unwrap())
        {
            assert_eq!(a["id"], b["id"]);
            assert!(
                (a["entropy"].as_f64().unwrap() - b["entropy"].as_f64().unwrap()).abs() <= 2e-3
            );
            assert!(
                (a["logprob"].as_f64().unwrap() - b["logprob"].as_f64().unwrap()).abs() <= 2e-3
            );
            let (ia, ib) = (
                a["influence"].as_f64().unwrap(),
                b["influence"].as_f64().unwrap(),
            );
            assert!((ia - ib).abs() / ib <= 1e-3, "influence {ia} vs {ib}");
            let (na, nb) = (
                a["nuclear"].as_array().unwrap(),
                b["nuclear"].as_array().unwrap(),
            );
            assert_eq!(na.len(), nb.len());
            for (x, y) in na.iter().zip(nb) {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                worst = worst.max((x - y).abs() / y);
            }
        }
        for key in ["rho_token", "rho_step"] {
            let (a, b) = (g[key].as_f64().unwrap(), c[key].as_f64().unwrap());
            assert!((a - b).abs() < 1e-9, "{key}: {a} vs {b}");
        }
        let (gs, cs) = (
            g["steps"].as_array().unwrap(),
            c["steps"].as_array().unwrap(),
        );
        assert_eq!(gs.len(), cs.len());
        for (a, b) in gs.iter().zip(cs) {
            assert_eq!(a["chars"], b["chars"]);
            assert_eq!(a["n_tokens"], b["n_tokens"]);
        }
    }
    println!("worst relative nuclear-norm error {worst:.1e}");
    assert!(worst <= 1e-3);
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["responses"], 3);
    assert_eq!(s["matrix_mean"]["values"].as_array().unwrap().len(), 30);
    assert!(s["rho_step"]["mean_ci95"].is_array());
    for f in ["scatter", "rho_hist", "heatmap", "response"] {
        for ext in ["svg", "png"] {
            assert!(
                out.join(format!("{f}.{ext}")).metadata().unwrap().len() > 1000,
                "{f}.{ext}"
            );
        }
    }
    assert!(!out.join("responses.partial.jsonl").exists());
}

#[test]
fn interrupted_run_resumes_and_bad_input_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"id": "a", "prompt": "What is 2 + 3?", "response": "2 + 3 = 5.\nThe answer is 5."}"#,
            r#"{"id": "b", "prompt": "What is 4 * 2?", "response": ""}"#,
            r#"{"id": "c", "prompt": "What is 9 - 4?", "response": "9 - 4 = 5.\nSo it is 5.\nDone."}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    // Uninterrupted reference run.
    let full = tmp.path().join("full");
    let o = run(&[], &input, &full);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Interrupted after one response, then resumed.
    let out = tmp.path().join("resumed");
    let o = run(&["--stop-after", "1"], &input, &out);
    assert!(o.status.success());
    assert!(!out.join("responses.jsonl").exists() && out.join("responses.partial.jsonl").exists());
    let o = run(&[], &input, &out);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming: 1 responses already done"));
    let (a, b) = (
        read_jsonl(&full.join("responses.jsonl")),
        read_jsonl(&out.join("responses.jsonl")),
    );
    assert_eq!(a.len(), 2, "the empty response is skipped");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["id"], y["id"]);
        assert_eq!(x["tokens"], y["tokens"]);
    }
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["skipped"], 1);
    assert_eq!(s["skipped_reasons"][0]["skipped"], "empty response");
    // One step only in "a"? No: two steps -> rho_step undefined (null), never NaN.
    let text = std::fs::read_to_string(out.join("responses.jsonl")).unwrap()
        + &std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(!text.contains("NaN") && !text.contains("nan"));
    assert!(b[0]["rho_step"].is_null());
    // Every response the mean rho_step leaves out is listed with its reason.
    let ex = s["rho_step_excluded"].as_array().unwrap();
    let reason = |id: &str| {
        ex.iter()
            .find(|e| e["id"] == id)
            .map(|e| e["reason"].as_str().unwrap().to_string())
    };
    assert_eq!(reason("b").unwrap(), "skipped: empty response");
    assert_eq!(reason("a").unwrap(), "fewer than 3 points (2 steps)");
    assert!(reason("c").is_none(), "{ex:?}");
    assert_eq!(s["rho_step"]["n"], 1);

    // Resuming with other options is refused.
    let o = run(&["--stop-after", "1", "--fresh"], &input, &out);
    assert!(o.status.success());
    let o = run(&["--norm", "frobenius"], &input, &out);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--fresh"));

    // Malformed JSONL: named by line.
    std::fs::write(
        &input,
        "{\"id\": \"a\", \"prompt\": \"x\", \"response\": \"y\"}\nnot json\n",
    )
    .unwrap();
    let o = run(&[], &input, &tmp.path().join("bad"));
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("in.jsonl:2") && e.trim().lines().count() == 1,
        "{e}"
    );

    // {"problem", "solution"} records (egi data arith --solutions): the prompt is --template
    // rendered on the problem; a line of neither shape is named with the shapes it may take.
    std::fs::write(
        &input,
        r#"{"id": "p", "problem": "Ann has 9 - 4 apples. How many?", "solution": "9 - 4 = 5\nEach step is exact = 5\nSo the answer is \\boxed{5}."}"#,
    )
    .unwrap();
    let sol = tmp.path().join("sol");
    let o = run(&["--template", "boxed"], &input, &sol);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = read_jsonl(&sol.join("responses.jsonl"));
    let prompt = r[0]["prompt"].as_str().unwrap();
    assert!(
        prompt.starts_with("Ann has 9 - 4 apples. How many?\nPlease reason step by step"),
        "{prompt}"
    );
    assert!(
        r[0]["rho_step"].is_number(),
        "three steps give a rho: {:?}",
        r[0]
    );
    std::fs::write(&input, r#"{"id": "q", "problem": "x"}"#).unwrap();
    let o = run(&[], &input, &tmp.path().join("bad2"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("in.jsonl:1") && e.contains("\"solution\""),
        "{e}"
    );

    // compare: same texts in both runs -> a paired test.
    let cmp = tmp.path().join("cmp");
    let o = egi()
        .args(["fingerprint", "compare"])
        .arg(&full)
        .arg(tmp.path().join("resumed"))
        .arg("--out")
        .arg(&cmp)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(cmp.join("compare.json")).unwrap()).unwrap();
    assert_eq!(c["runs"].as_array().unwrap().len(), 2);
    assert_eq!(c["paired_tests"][0]["pairs"], 2);
    assert_eq!(c["paired_tests"][0]["pairing"], "text");
    // The same texts resumed give the same rho: every difference is 0, uninformative.
    assert!(c["paired_tests"][0]["uninformative"]
        .as_str()
        .unwrap()
        .contains("all 2 values are 0"));
    assert!(cmp.join("compare.png").exists());

    // Another answer to the same prompt (a checkpoint's own response): paired by prompt only.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(full.join("summary.json"), other.join("summary.json")).unwrap();
    let lines: Vec<String> = read_jsonl(&full.join("responses.jsonl"))
        .into_iter()
        .map(|mut v| {
            if v["id"] == "c" {
                v["response"] = "9 - 4 = 5.\nFive.".into();
                v["rho_token"] = 0.25.into();
            }
            v.to_string()
        })
        .collect();
    std::fs::write(other.join("responses.jsonl"), lines.join("\n")).unwrap();
    let pairs = |by: &str| -> Value {
        let o = egi()
            .args(["fingerprint", "compare"])
            .arg(&full)
            .arg(&other)
            .arg("--out")
            .arg(tmp.path().join(format!("cmp-{by}")))
            .args(["--pair-by", by])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let c: Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join(format!("cmp-{by}/compare.json"))).unwrap(),
        )
        .unwrap();
        c["paired_tests"][0].clone()
    };
    let (t, p) = (pairs("text"), pairs("prompt"));
    assert_eq!(
        (t["pairs"].as_u64(), p["pairs"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(p["pairing"], "prompt");
    // One nonzero difference cannot reach p < 0.05: uninformative, with the reason.
    assert!(p["uninformative"]
        .as_str()
        .unwrap()
        .contains("only 1 of 2 values are nonzero"));
    let c_full = read_jsonl(&full.join("responses.jsonl"))[1]["rho_token"]
        .as_f64()
        .unwrap();
    let want = (0.25 - c_full) / 2.0;
    assert!((p["mean_difference"].as_f64().unwrap() - want).abs() < 1e-12);
}
