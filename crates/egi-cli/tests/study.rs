//! `egi study` end to end at toy size: every stage runs and the report is written; a rerun
//! skips finished stages; the report's tables are read from the stages' JSON outputs (an
//! edited summary.json shows up in the regenerated report); bad settings are rejected by name.
//!
//! The stages run a tiny random model that speaks the default model's tokenizer and chat
//! template: what is under test is the study's plumbing (its commands, markers, resume and
//! report), and every command it runs is tested on the real default model by its own test
//! (eval.rs, fingerprint.rs, train.rs). The numbers mean nothing at toy size either way.

use std::path::Path;
use std::process::Command;

fn egi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egi"))
}

fn run(args: &[&str], dir: &Path, config: &Path) -> std::process::Output {
    egi()
        .args(["study", "--quick", "--config"])
        .arg(config)
        .arg("--out")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn quick_study_runs_resumes_and_reports_from_json() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny-model");
    egi_model::testing::save_tiny_with_tokenizer_of("default", 7, &model).unwrap();
    let config = tmp.path().join("study.toml");
    std::fs::write(
        &config,
        // GSM8K from the copies bundled with egi (no data_dir).
        format!(
            "model = {:?}\nfp_prompts = 2\nfp_max_new_tokens = 32\n",
            model.display().to_string()
        ),
    )
    .unwrap();
    let dir = tmp.path().join("study");
    let out = run(&[], &dir, &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n_stages = String::from_utf8_lossy(&run(&["--dry-run"], &dir, &config).stdout)
        .lines()
        .count();
    let done = std::fs::read_dir(dir.join("stages")).unwrap().count();
    assert_eq!(done, n_stages, "every stage leaves its marker");
    for f in [
        "report.md",
        "report.html",
        "report.json",
        "sft-rho.svg",
        "sft-rho-fixed.svg",
        "rl-rho.svg",
        "rl-curves.svg",
        "rl-seeds.svg",
    ] {
        assert!(dir.join("report").join(f).exists(), "report/{f} missing");
    }
    let md = std::fs::read_to_string(dir.join("report/report.md")).unwrap();
    assert!(md.contains("## 3. Verdicts") && md.contains("egi train --algo corr-po"));
    // SFT data are exact worked solutions; RL starts from the last SFT checkpoint, per seed.
    let traces = std::fs::read_to_string(dir.join("data/sft-traces.jsonl")).unwrap();
    assert!(traces
        .lines()
        .all(|l| l.contains("\"solution\"") && l.contains("boxed")));
    let dry = String::from_utf8_lossy(&run(&["--dry-run"], &dir, &config).stdout).to_string();
    for seed in ["s1", "s2"] {
        assert!(
            dry.contains(&format!(
                "--out {}",
                dir.join(format!("rl/grpo-{seed}")).display()
            )),
            "{dry}"
        );
    }
    assert!(dry.contains(&format!(
        "--model {}",
        dir.join("sft/checkpoints/step-000002").display()
    )));

    // A rerun finds every stage done and only rewrites the report.
    let t0 = std::time::Instant::now();
    let again = run(&[], &dir, &config);
    assert!(again.status.success());
    assert!(
        t0.elapsed().as_secs() < 30,
        "finished stages must be skipped"
    );

    // The tables come from the JSON outputs: edit some of them, regenerate, find the values.
    edit_json(&dir.join("fp/sft-2/summary.json"), |v| {
        v["rho_step"]["mean"] = serde_json::json!(-0.4321);
        v["rho_step"]["mean_ci95"] = serde_json::json!([-0.6543, -0.2109]);
        v["rho_step"]["n"] = serde_json::json!(16);
    });
    // Too few defined rho values for any test: uninformative, not a verdict from the CI.
    edit_json(&dir.join("fp/sft-2-token/summary.json"), |v| {
        v["rho_token"]["mean"] = serde_json::json!(-0.5);
        v["rho_token"]["mean_ci95"] = serde_json::json!([-0.7, -0.3]);
        v["rho_token"]["n"] = serde_json::json!(5);
    });
    // A paired SFT test below 0 with p < 0.05 supports "SFT lowers rho".
    edit_json(&dir.join("fp/cmp-sft-fixed/compare.json"), |v| {
        for t in v["paired_tests"].as_array_mut().unwrap() {
            t["mean_difference"] = serde_json::json!(-0.2468);
            t["difference_ci95"] = serde_json::json!([-0.4, -0.1]);
            t["p_value"] = serde_json::json!(0.01);
            t["pairs"] = serde_json::json!(16);
            t["uninformative"] = serde_json::Value::Null;
        }
    });
    edit_json(&dir.join("eval/sft-arith2/summary.json"), |v| {
        v["metrics"]["pass@1"]["mean"] = serde_json::json!(0.777);
        v["metrics"]["pass@1"]["wilson95"] = serde_json::json!([0.611, 0.888]);
    });
    // Accuracy differences pool the seeds problem by problem: the SFT model wrong on every
    // arith1 problem, seed 1 of GRPO right on all, seed 2 wrong on all -> +0.5 on average.
    let set_all = |path: &Path, x: f64| {
        edit_json(path, |v| {
            for (_, p) in v["per_problem_pass@1"].as_object_mut().unwrap() {
                *p = serde_json::json!(x);
            }
        })
    };
    set_all(&dir.join("eval/sft-arith1/summary.json"), 0.0);
    set_all(&dir.join("eval/grpo-s1-arith1/summary.json"), 1.0);
    set_all(&dir.join("eval/grpo-s2-arith1/summary.json"), 0.0);
    // Across seeds: GRPO's arithmetic accuracy 0.5 (seed 1) and 0.7 (seed 2) on every set ->
    // mean 0.6, t(0.975, 1) x sd / sqrt 2 = 12.706 x 0.1414 / 1.414 = 1.271.
    for k in 1..=4 {
        for (seed, acc) in [(1, 0.5), (2, 0.7)] {
            edit_json(
                &dir.join(format!("eval/grpo-s{seed}-arith{k}/summary.json")),
                |v| v["metrics"]["pass@1"]["mean"] = serde_json::json!(acc),
            );
        }
    }
    let out = run(&["--report-only"], &dir, &config);
    assert!(out.status.success());
    let md = std::fs::read_to_string(dir.join("report/report.md")).unwrap();
    assert!(
        md.contains("| GRPO | 0.600 [-0.671, 1.871] (2 seeds) |"),
        "{md}"
    );
    // An accuracy claim is decided on every held-out problem together, one test.
    assert!(
        md.contains("| GRPO - SFT | all held-out problems | "),
        "{md}"
    );
    assert!(
        md.contains(
            "| GRPO raises held-out accuracy | the premise of RLVR | all held-out problems: "
        ),
        "{md}"
    );
    assert!(md.contains("-0.432 [-0.654, -0.211] (n = 16)"), "{md}");
    assert!(md.contains("0.777 [0.611, 0.888]"), "{md}");
    assert!(
        md.contains("| GRPO - SFT | arithmetic, 1 step | +0.500 [+0.500, +0.500] (p 0.250, 3 pairs); per seed +1.000, +0.000 | 3 (uninformative) |"),
        "{md}"
    );
    // ... and the verdicts follow the numbers.
    assert!(
        md.contains("SFT model: token uninformative (only 5 responses"),
        "{md}"
    );
    assert!(md.contains("; step supported |"), "{md}");
    assert!(
        md.contains("-0.247 [-0.400, -0.100] (p 0.010, 16 pairs)"),
        "{md}"
    );
    // report.json holds the same tables and verdicts, and the unrounded numbers behind them.
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report/report.json")).unwrap())
            .unwrap();
    assert_eq!(
        j["sources"]["fp/sft-2/summary.json"]["rho_step"]["mean"],
        -0.4321
    );
    let cells: Vec<&str> = j["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["tables"].as_array().unwrap())
        .flat_map(|t| t["rows"].as_array().unwrap())
        .flat_map(|r| r.as_array().unwrap())
        .filter_map(|c| c.as_str())
        .collect();
    assert!(cells.contains(&"0.777 [0.611, 0.888]"), "{cells:?}");
    let verdicts = j["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 6);
    assert!(verdicts
        .iter()
        .any(|v| v["claim"] == "SFT on reasoning traces lowers rho"
            && v["verdict"].as_str().unwrap().ends_with("(b) supported")));
    assert_eq!(j["stages"].as_array().unwrap().len(), n_stages);
    assert!(j["stages"][0]["command"]
        .as_str()
        .unwrap()
        .starts_with("egi data arith"));
    assert!(j["stages"][0]["seconds"].is_number());
    assert!(j["sources"]["rl/corr-po-s2/metrics.jsonl"].is_array());
    // The quick study's own comparisons have a handful of pairs: uninformative, never
    // "supported" or "inconclusive" on that little.
    assert!(md.contains("token: (a) uninformative ("), "{md}");
    for stage in [
        "fp-sft-0-token",
        "fp-compare-sft-fixed-token",
        "fp-compare-rl-token",
        "train-corr-po-s2",
    ] {
        assert!(
            dir.join("stages").join(format!("{stage}.done")).exists(),
            "{stage}"
        );
    }
    // Without --config, --report-only uses the settings saved in the study directory.
    let out = egi()
        .args(["study", "--report-only", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md2 = std::fs::read_to_string(dir.join("report/report.md")).unwrap();
    assert_eq!(md, md2);
    let html = std::fs::read_to_string(dir.join("report/report.html")).unwrap();
    assert!(html.contains("-0.432 [-0.654, -0.211]") && html.contains("<svg"));

    // Other settings in the same directory are refused (resume needs the same study).
    std::fs::write(&config, "fp_prompts = 5\n").unwrap();
    let out = run(&[], &dir, &config);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("other settings"));
}

#[test]
fn bad_study_settings_are_rejected_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("bad.toml");
    std::fs::write(&config, "rl_stpes = 3\n").unwrap();
    let out = run(&["--dry-run"], &tmp.path().join("s"), &config);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rl_stpes"), "{err}");
    std::fs::write(&config, "rl_group_size = 1\n").unwrap();
    let out = run(&["--dry-run"], &tmp.path().join("s"), &config);
    assert!(String::from_utf8_lossy(&out.stderr).contains("rl_group_size"));
}
