//! One owner per output directory: every command that writes a directory it may resume
//! refuses, at once and by name, a directory another process holds; a killed holder leaves
//! no stale lock.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn egi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egi"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Hold DIR/.egi.lock from this (test) process, as another egi would.
fn hold(dir: &Path) -> std::fs::File {
    std::fs::create_dir_all(dir).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join(".egi.lock"))
        .unwrap();
    f.try_lock().unwrap();
    writeln!(
        f,
        "{}",
        serde_json::json!({"pid": std::process::id(), "command": "egi train --out held", "started": "2026-12-03 12:00:00 UTC"})
    )
    .unwrap();
    f
}

/// The commands that own an --out directory, with arguments that fail fast once past the lock.
fn commands(dir: &Path) -> Vec<(&'static str, Vec<String>)> {
    let d = dir.display().to_string();
    let missing = dir
        .parent()
        .unwrap()
        .join("missing.jsonl")
        .display()
        .to_string();
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("train", v(&["train", "--data", &missing, "--out", &d])),
        ("sft", v(&["sft", "--data", &missing, "--out", &d])),
        ("eval", v(&["eval", "--bench", &missing, "--out", &d])),
        (
            "fingerprint",
            v(&["fingerprint", "--input", &missing, "--out", &d]),
        ),
        ("study", v(&["study", "--quick", "--out", &d])),
    ]
}

#[test]
fn every_owning_command_refuses_a_held_directory_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, args) in commands(&tmp.path().join("out")) {
        let dir = tmp.path().join(format!("out-{name}"));
        let args: Vec<String> = args
            .into_iter()
            .map(|a| {
                a.replace(
                    &tmp.path().join("out").display().to_string(),
                    &dir.display().to_string(),
                )
            })
            .collect();
        let lock = hold(&dir);
        let t = Instant::now();
        let o = egi().args(&args).output().unwrap();
        let err = stderr(&o);
        assert!(!o.status.success(), "{name}: ran on a held directory");
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{name}: not refused at once"
        );
        assert!(err.contains("another egi process"), "{name}: {err}");
        assert!(err.contains(&dir.display().to_string()), "{name}: {err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{name}: {err}"
        );
        assert!(
            err.contains("egi train --out held") && err.contains("choose another --out"),
            "{name}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
        drop(lock);
        if name != "study" {
            // released: the same command now gets past the lock (and fails on the missing data)
            let o = egi().args(&args).output().unwrap();
            let err = stderr(&o);
            assert!(!err.contains("another egi process"), "{name}: {err}");
            assert!(err.contains("missing.jsonl"), "{name}: {err}");
        }
    }
}

#[test]
fn two_trainings_on_one_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("arith.jsonl");
    let o = egi()
        .args([
            "data", "arith", "--n", "8", "--seed", "1", "--steps", "1", "--out",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run = tmp.path().join("run");
    let train = |extra: &[&str]| {
        let mut c = egi();
        c.args([
            "train",
            "--algo",
            "grpo",
            "--max-steps",
            "1000",
            "--group-size",
            "2",
        ])
        .args(["--batch-prompts", "1", "--max-new-tokens", "8", "--data"])
        .arg(&data)
        .args(extra)
        .arg("--out")
        .arg(&run);
        c
    };
    let mut first = train(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(run.join(".egi.lock")).unwrap_or_default();
        if text.contains(&format!("\"pid\":{}", first.id())) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the first run never took the lock"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run exited early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = train(&[]).output().unwrap();
    let err = stderr(&second);
    assert!(!second.status.success(), "two processes trained one run");
    assert!(
        err.contains(&format!("pid {}", first.id())) && err.contains("egi train"),
        "{err}"
    );
    // kill -9 leaves no stale lock: the next process owns the directory
    first.kill().unwrap();
    first.wait().unwrap();
    let third = train(&["--max-steps", "0"]).output().unwrap();
    assert!(
        !stderr(&third).contains("another egi process"),
        "{}",
        stderr(&third)
    );
}
