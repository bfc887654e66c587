//! The `egi` binary on the real default model (SmolLM2-135M-Instruct, fetched once into the
//! cache) against the PyTorch fixture in test-data/reference/smollm2_public.json.

use std::path::PathBuf;
use std::process::Command;

fn egi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egi"))
}

fn test_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-data")
}

fn fixture() -> serde_json::Value {
    let p = test_data().join("reference/smollm2_public.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn score_matches_pytorch_fixture() {
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
    let out = tmp.path().join("scores.jsonl");
    let st = egi()
        .args(["score", "--model", "default", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let got: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), cases.len());
    let (mut e_lp, mut e_ent) = (0f64, 0f64);
    for (g, c) in got.iter().zip(cases) {
        assert_eq!(g["id"], c["id"]);
        assert_eq!(g["n_prompt"], c["n_prompt"]);
        let gt = g["tokens"].as_array().unwrap();
        let ct = c["tokens"].as_array().unwrap();
        assert_eq!(gt.len(), ct.len(), "{}: response token count", c["id"]);
        // The full tokenization equals the fixture's input_ids.
        let n_prompt = c["n_prompt"].as_u64().unwrap() as usize;
        let ids = c["input_ids"].as_array().unwrap();
        for (i, (a, b)) in gt.iter().zip(ct).enumerate() {
            assert_eq!(a["id"], b["id"]);
            assert_eq!(a["id"], ids[n_prompt + i]);
            assert_eq!(a["pos"], b["pos"]);
            assert_eq!(a["text"], b["text"]);
            assert_eq!(a["char_start"], b["char_start"]);
            e_lp =
                e_lp.max((a["logprob"].as_f64().unwrap() - b["logprob"].as_f64().unwrap()).abs());
            e_ent =
                e_ent.max((a["entropy"].as_f64().unwrap() - b["entropy"].as_f64().unwrap()).abs());
        }
        let total: f64 = ct.iter().map(|t| t["logprob"].as_f64().unwrap()).sum();
        assert!((g["total_logprob"].as_f64().unwrap() - total).abs() < 2e-3 * ct.len() as f64);
    }
    println!("max abs error: logprob {e_lp:.2e}, entropy {e_ent:.2e}");
    assert!(
        e_lp <= 2e-3 && e_ent <= 2e-3,
        "logprob {e_lp}, entropy {e_ent}"
    );
}

#[test]
fn greedy_generation_says_paris() {
    let o = egi()
        .args([
            "generate",
            "--model",
            "default",
            "--prompt",
            "The capital of France is",
        ])
        .args(["--max-new-tokens", "8", "--temperature", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.starts_with(" Paris"), "{s:?}");
}

#[test]
fn seeded_sampling_is_reproducible_and_json_is_complete() {
    let run = || {
        let o = egi()
            .args([
                "generate",
                "--model",
                "default",
                "--chat",
                "--prompt",
                "Name a fruit.",
            ])
            .args([
                "--max-new-tokens",
                "12",
                "--temperature",
                "0.9",
                "--top-p",
                "0.95",
            ])
            .args(["--seed", "4", "--n", "3", "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let a = run();
    assert_eq!(a, run(), "same seeds, different completions");
    let rows: Vec<serde_json::Value> = a
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let n = r["token_ids"].as_array().unwrap().len();
        assert!((1..=12).contains(&n));
        assert_eq!(r["logprobs"].as_array().unwrap().len(), n);
        assert!(r["logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.as_f64().unwrap() <= 0.0));
    }
    let texts: std::collections::HashSet<_> = rows.iter().map(|r| r["text"].to_string()).collect();
    assert!(texts.len() >= 2, "three seeds gave one text: {texts:?}");
}

#[test]
fn stop_strings_cut_the_text() {
    let o = egi()
        .args([
            "generate",
            "--model",
            "default",
            "--prompt",
            "Count: 1, 2, 3, 4,",
        ])
        .args([
            "--max-new-tokens",
            "30",
            "--temperature",
            "0",
            "--stop",
            "7",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let r: serde_json::Value =
        serde_json::from_str(String::from_utf8(o.stdout).unwrap().trim()).unwrap();
    assert_eq!(r["finish_reason"], "stop");
    let t = r["text"].as_str().unwrap();
    assert!(!t.contains('7') && t.contains('6'), "{t:?}");
}

#[test]
fn bad_input_gives_one_line_errors_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"prompt\": \"a\", \"response\": \"b\"}\n{\"id\": 2, \"prompt\": \"a\"}\n",
    )
    .unwrap();
    let out = tmp.path().join("out.jsonl");
    let o = egi()
        .args(["score", "--model", "default", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("in.jsonl:2") && err.contains("response"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!out.exists());

    let bad = tmp.path().join("broken.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00").unwrap();
    let o = egi()
        .args(["generate", "--prompt", "x", "--model"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("broken.gguf") && err.starts_with("error: "),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Sizes a benchmark divides by, and layer lists, are refused before any model loads, naming
/// the flag and the fix.
#[test]
fn bench_and_layer_flags_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"prompt\": \"a\", \"response\": \"b\"}\n",
    )
    .unwrap();
    let (input, out) = (
        input.to_str().unwrap().to_string(),
        tmp.path().join("fp").to_str().unwrap().to_string(),
    );
    let cases: [(Vec<&str>, &str); 6] = [
        (
            vec!["bench", "--tokens", "1"],
            "--tokens 1: give at least 2",
        ),
        (
            vec!["bench", "--new-tokens", "0"],
            "--new-tokens 0: give at least 2",
        ),
        (
            vec!["bench", "--probe", "--oracle-tokens", "0"],
            "--oracle-tokens 0",
        ),
        (
            vec!["bench", "--train", "--rows", "grpo", "--fp-layers", "0-3"],
            "add corr-po to --rows",
        ),
        (
            vec![
                "fingerprint",
                "--input",
                &input,
                "--out",
                &out,
                "--layers",
                "5-2",
            ],
            "--layers: layers \"5-2\" is an empty range",
        ),
        (
            vec!["train", "--data", &input, "--out", &out, "--fp-layers", "a"],
            "--fp-layers: cannot read layers \"a\"",
        ),
    ];
    for (args, want) in cases {
        let o = egi().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{args:?}: {err}");
    }
}

/// Output into a closed pipe (`egi data list | head -1`) ends egi quietly, not in a panic.
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::process::Stdio;
    let mut child = egi()
        .args(["data", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before egi writes
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// Every command's --help points at the method document, which exists in the repository.
#[test]
fn every_help_points_to_the_method_doc() {
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/method.md");
    assert!(doc.is_file(), "{}", doc.display());
    let cmds: &[&[&str]] = &[
        &[],
        &["fingerprint"],
        &["fingerprint", "compare"],
        &["eval"],
        &["eval", "compare"],
        &["verify"],
        &["generate"],
        &["score"],
        &["plot"],
        &["save"],
        &["info"],
        &["bench"],
        &["data", "list"],
        &["data", "export"],
        &["data", "arith"],
        &["train"],
        &["sft"],
        &["study"],
    ];
    for c in cmds {
        let o = egi().args(*c).arg("--help").output().unwrap();
        assert!(o.status.success(), "{c:?}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("docs/method.md"), "egi {c:?} --help: {text}");
        assert!(!text.contains(concat!("..", "/shared")), "egi {c:?} --help");
    }
}
