//! Sharded runs (`--shard K/N`) merged back (`merge`) equal the single run over the whole
//! input, every number (wall times aside), for N = 1, 2, 3 and 7; a merge of an incomplete,
//! duplicated or mixed set writes nothing and names the shard. The fingerprint's on a tiny
//! random model with the default tokenizer (the partition and the merge do not depend on the
//! model; the fingerprint itself is proven against PyTorch in fingerprint.rs); the
//! evaluation's on the default model, which answers some sums right, so Pass@k is neither 0
//! nor 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn egi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egi"))
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Removes the timing fields (the only ones allowed to differ) everywhere in `v`.
fn untimed(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                for k in [
                    "seconds",
                    "wall_seconds",
                    "probe_seconds",
                    "seconds_per_token",
                    "tokens_per_second",
                ] {
                    o.remove(k);
                }
                o.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// Texts with 1 to 6 lines (some too short for a step rho), an empty response (skipped) and
/// one too long for --max-tokens (skipped): skipped records must merge too.
fn write_texts(path: &Path) {
    let mut lines = vec![];
    for i in 0..11 {
        let steps: Vec<String> = (0..=(i % 6))
            .map(|s| format!("Step {s}: {} plus {s} is {}.", i, i + s))
            .collect();
        lines.push(serde_json::json!({"id": format!("t{i}"), "prompt": format!("What is {i} plus a few?"), "response": steps.join("\n")}));
    }
    lines.insert(
        4,
        serde_json::json!({"id": "empty", "prompt": "Say nothing.", "response": ""}),
    );
    lines.push(serde_json::json!({"id": "long", "prompt": "Count.", "response": "one two three ".repeat(60)}));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn fingerprint(model: &Path, input: &Path, out: &Path, extra: &[&str]) -> Output {
    egi()
        .args(["fingerprint", "--model"])
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args([
            "--bootstrap",
            "300",
            "--max-tokens",
            "120",
            "--layers",
            "0,1",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn sharded_fingerprint_merges_into_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    egi_model::testing::save_tiny_with_tokenizer_of("default", 3, &model).unwrap();
    let input = tmp.path().join("texts.jsonl");
    write_texts(&input);
    let single = tmp.path().join("single");
    ok(fingerprint(&model, &input, &single, &[]));
    let want_rows = untimed(Value::Array(read_jsonl(&single.join("responses.jsonl"))));
    let want_summary = untimed(read(&single.join("summary.json")));
    assert_eq!(want_summary["skipped"], 3, "{want_summary}");

    for n in [1usize, 2, 3, 7] {
        let dirs: Vec<PathBuf> = (1..=n)
            .map(|k| tmp.path().join(format!("n{n}-part{k}")))
            .collect();
        for (k, d) in dirs.iter().enumerate().rev() {
            ok(fingerprint(
                &model,
                &input,
                d,
                &["--shard", &format!("{}/{n}", k + 1)],
            ));
            let m = read(&d.join("shard.json"));
            assert_eq!(m["shard"], format!("{}/{n}", k + 1));
            assert_eq!(m["finished"], true);
        }
        let merged = tmp.path().join(format!("merged-{n}"));
        let o = ok(egi()
            .args(["fingerprint", "merge"])
            .args(&dirs)
            .arg("--out")
            .arg(&merged)
            .output()
            .unwrap());
        assert!(String::from_utf8_lossy(&o.stdout).contains("verdict"));
        let rows = untimed(Value::Array(read_jsonl(&merged.join("responses.jsonl"))));
        assert_eq!(rows, want_rows, "N = {n}: responses.jsonl");
        assert_eq!(
            untimed(read(&merged.join("summary.json"))),
            want_summary,
            "N = {n}: summary.json"
        );
        assert!(merged.join("scatter.svg").is_file() && merged.join("rho_hist.png").is_file());
    }
}

#[test]
fn incomplete_duplicated_or_mixed_shards_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    egi_model::testing::save_tiny_with_tokenizer_of("default", 3, &model).unwrap();
    let input = tmp.path().join("texts.jsonl");
    write_texts(&input);
    let part = |k: usize, extra: &[&str]| {
        let d = tmp.path().join(format!("p{k}{}", extra.join("")));
        ok(fingerprint(
            &model,
            &input,
            &d,
            &[&["--shard", &format!("{k}/3")][..], extra].concat(),
        ));
        d
    };
    let (a, b, c) = (part(1, &[]), part(2, &[]), part(3, &[]));
    let merge = |dirs: &[&PathBuf]| {
        let out = tmp.path().join("merged");
        let o = egi()
            .args(["fingerprint", "merge"])
            .args(dirs)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(!out.join("summary.json").exists(), "nothing is written");
        stderr(&o)
    };
    assert!(merge(&[&a, &c]).contains("nothing merged: missing shard 2/3"));
    assert!(merge(&[&a, &b, &b, &c]).contains("shard 2/3 is given twice"));
    let frob = part(2, &["--norm", "frobenius"]);
    let e = merge(&[&a, &frob, &c]);
    assert!(
        e.contains("is not a part of the same run") && e.contains("options.norm"),
        "{e}"
    );
    // An interrupted shard: merge says which, its rerun resumes and finishes it.
    let d = tmp.path().join("interrupted");
    ok(fingerprint(
        &model,
        &input,
        &d,
        &["--shard", "2/3", "--stop-after", "2"],
    ));
    assert!(merge(&[&a, &d, &c]).contains("not finished: 2/3"));
    let o = ok(fingerprint(&model, &input, &d, &["--shard", "2/3"]));
    assert!(
        stderr(&o).contains("resuming: 2 responses already done"),
        "{}",
        stderr(&o)
    );
    let out = tmp.path().join("merged-ok");
    ok(egi()
        .args(["fingerprint", "merge"])
        .args([&a, &d, &c])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    // Another input is another run.
    let other = tmp.path().join("other.jsonl");
    std::fs::write(
        &other,
        std::fs::read_to_string(&input)
            .unwrap()
            .replace("plus", "and"),
    )
    .unwrap();
    let x = tmp.path().join("other-part");
    ok(fingerprint(&model, &other, &x, &["--shard", "2/3"]));
    assert!(merge(&[&a, &x, &c]).contains("input_sha256"));
    // --shard needs --input and a well-formed K/N.
    let o = fingerprint(&model, &input, &tmp.path().join("bad"), &["--shard", "4/3"]);
    assert!(
        stderr(&o).contains("expected K/N with 1 <= K <= N"),
        "{}",
        stderr(&o)
    );
}

fn eval(model: &Path, bench: &Path, out: &Path, extra: &[&str]) -> Output {
    egi()
        .args(["eval", "--model"])
        .arg(model)
        .arg("--bench")
        .arg(bench)
        .arg("--out")
        .arg(out)
        .args([
            "--n",
            "4",
            "--k",
            "1,2,4",
            "--temperature",
            "1.0",
            "--top-p",
            "1.0",
        ])
        .args([
            "--max-new-tokens",
            "12",
            "--template",
            "plain",
            "--bootstrap",
            "300",
        ])
        .args(["--batch", "8"])
        .args(extra)
        .output()
        .unwrap()
}

/// Sums the default model gets right some of the time, so that Pass@1 < Pass@2 < Pass@4 are
/// neither 0 nor 1 (the real model: a tiny random one answers nothing right).
fn write_bench(path: &Path) {
    let text: String = (0..9)
        .map(|i| {
            let (x, y) = (i + 2, 3 * i + 1);
            format!("{}\n", serde_json::json!({"id": format!("p{i}"), "problem": format!("What is {x} + {y}? Answer with the number only."), "answer": (x + y).to_string()}))
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn sharded_eval_merges_into_the_single_run_with_pass_at_k() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Path::new("default");
    let bench = tmp.path().join("bench.jsonl");
    write_bench(&bench);
    let single = tmp.path().join("single");
    ok(eval(model, &bench, &single, &[]));
    let want_rows = untimed(Value::Array(read_jsonl(&single.join("samples.jsonl"))));
    let want = untimed(read(&single.join("summary.json")));
    let p1 = want["metrics"]["pass@1"]["mean"].as_f64().unwrap();
    assert!(p1 > 0.0 && p1 < 1.0, "{want}");

    for n in [1usize, 2, 3, 7] {
        let dirs: Vec<PathBuf> = (1..=n)
            .map(|k| tmp.path().join(format!("eval-n{n}-part{k}")))
            .collect();
        for (k, d) in dirs.iter().enumerate() {
            ok(eval(
                model,
                &bench,
                d,
                &["--shard", &format!("{}/{n}", k + 1)],
            ));
        }
        let merged = tmp.path().join(format!("eval-merged-{n}"));
        ok(egi()
            .args(["eval", "merge"])
            .args(&dirs)
            .arg("--out")
            .arg(&merged)
            .output()
            .unwrap());
        let rows = untimed(Value::Array(read_jsonl(&merged.join("samples.jsonl"))));
        assert_eq!(rows, want_rows, "N = {n}: samples.jsonl");
        let got = untimed(read(&merged.join("summary.json")));
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap(),
            "N = {n}: summary.json (keys in the same order too)"
        );
    }
    // An incomplete set is refused by name, and nothing is written.
    let out = tmp.path().join("eval-incomplete");
    let o = egi()
        .args(["eval", "merge"])
        .arg(tmp.path().join("eval-n3-part1"))
        .arg(tmp.path().join("eval-n3-part3"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(stderr(&o).contains("missing shard 2/3"), "{}", stderr(&o));
    assert!(!out.join("summary.json").exists());
}

/// The Slurm array scripts, run as Slurm runs them (one process per array task, with the
/// environment Slurm gives it), then the merge job: the single run's result.
#[test]
fn slurm_array_scripts_shard_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    egi_model::testing::save_tiny_with_tokenizer_of("default", 3, &model).unwrap();
    let input = tmp.path().join("texts.jsonl");
    write_texts(&input);
    let flags = [
        "--bootstrap",
        "300",
        "--max-tokens",
        "120",
        "--layers",
        "0,1",
    ];
    let single = tmp.path().join("single");
    ok(fingerprint(&model, &input, &single, &[]));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tmp.path().join("out");
    for k in 1..=3 {
        ok(Command::new("bash")
            .arg(repo.join("tools/slurm/fingerprint-array.sbatch"))
            .arg(&input)
            .arg(&out)
            .args(["--model", model.to_str().unwrap()])
            .args(flags)
            .env("EGI", env!("CARGO_BIN_EXE_egi"))
            .env("SLURM_ARRAY_TASK_ID", k.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env_remove("CUDA_VISIBLE_DEVICES")
            .output()
            .unwrap());
    }
    ok(Command::new("bash")
        .arg(repo.join("tools/slurm/merge.sbatch"))
        .args(["fingerprint", out.to_str().unwrap()])
        .env("EGI", env!("CARGO_BIN_EXE_egi"))
        .output()
        .unwrap());
    assert_eq!(
        untimed(read(&out.join("summary.json"))),
        untimed(read(&single.join("summary.json")))
    );
    // Outside an array job the script says how to submit it.
    let o = Command::new("bash")
        .arg(repo.join("tools/slurm/fingerprint-array.sbatch"))
        .arg(&input)
        .arg(&out)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("sbatch --array=1-N"),
        "{}",
        stderr(&o)
    );
    for script in [
        "submit-fingerprint.sh",
        "submit-eval.sh",
        "eval-array.sbatch",
    ] {
        ok(Command::new("bash")
            .arg("-n")
            .arg(repo.join("tools/slurm").join(script))
            .output()
            .unwrap());
    }
}

/// A finished run asked again says it is complete and where, and stops at once; `--fresh`
/// recomputes; other options are another run.
#[test]
fn a_finished_run_is_not_redone_unless_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    egi_model::testing::save_tiny_with_tokenizer_of("default", 3, &model).unwrap();
    let input = tmp.path().join("texts.jsonl");
    write_texts(&input);
    let out = tmp.path().join("fp");
    ok(fingerprint(&model, &input, &out, &[]));
    let first = std::fs::metadata(out.join("summary.json"))
        .unwrap()
        .modified()
        .unwrap();
    let again = ok(fingerprint(&model, &input, &out, &[]));
    let e = stderr(&again);
    assert!(
        e.contains("complete:") && e.contains(out.to_str().unwrap()) && e.contains("--fresh"),
        "{e}"
    );
    assert_eq!(
        std::fs::metadata(out.join("summary.json"))
            .unwrap()
            .modified()
            .unwrap(),
        first
    );
    let fresh = ok(fingerprint(&model, &input, &out, &["--fresh"]));
    assert!(!stderr(&fresh).contains("complete:"));
    assert_ne!(
        std::fs::metadata(out.join("summary.json"))
            .unwrap()
            .modified()
            .unwrap(),
        first
    );
    let other = ok(fingerprint(&model, &input, &out, &["--norm", "frobenius"]));
    assert!(!stderr(&other).contains("complete:"));
    assert_eq!(
        read(&out.join("summary.json"))["options"]["norm"],
        "frobenius"
    );
    // The input changed: another run.
    std::fs::write(
        &input,
        std::fs::read_to_string(&input)
            .unwrap()
            .replace("plus", "and"),
    )
    .unwrap();
    assert!(!stderr(&ok(fingerprint(
        &model,
        &input,
        &out,
        &["--norm", "frobenius"]
    )))
    .contains("complete:"));

    let bench = tmp.path().join("bench.jsonl");
    write_bench(&bench);
    let ev = tmp.path().join("eval");
    let args = ["--limit", "2"];
    ok(eval(&model, &bench, &ev, &args));
    let e = stderr(&ok(eval(&model, &bench, &ev, &args)));
    assert!(
        e.contains("complete:") && e.contains("samples.jsonl"),
        "{e}"
    );
    assert!(!stderr(&ok(eval(&model, &bench, &ev, &["--limit", "3"]))).contains("complete:"));
}

/// Without a terminal (stderr piped, as here), a long command prints plain progress lines at
/// the pace EGI_PROGRESS_EVERY asks; with 0, none.
#[test]
fn progress_without_a_terminal_is_plain_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    egi_model::testing::save_tiny_with_tokenizer_of("default", 3, &model).unwrap();
    let input = tmp.path().join("texts.jsonl");
    write_texts(&input);
    let run = |every: &str, out: &str| {
        ok(egi()
            .env("EGI_PROGRESS_EVERY", every)
            .args(["fingerprint", "--model"])
            .arg(&model)
            .arg("--input")
            .arg(&input)
            .arg("--out")
            .arg(tmp.path().join(out))
            .args(["--bootstrap", "100", "--max-tokens", "120"])
            .output()
            .unwrap())
    };
    let e = stderr(&run("0.02", "a"));
    let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("responses: ")).collect();
    assert!(!lines.is_empty(), "{e}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("/13 (") && l.contains("/s, elapsed ") && l.contains(", eta ")),
        "{e}"
    );
    let e = stderr(&run("0", "b"));
    assert!(!e.contains("responses: "), "{e}");
}
