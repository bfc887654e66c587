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
        (
            "fingerprint-merge",
            v(&["fingerprint", "merge", &missing, "--out", &d]),
        ),
        ("eval-merge", v(&["eval", "merge", &missing, "--out", &d])),
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

/// `egi eval` on a disk that fills mid-run (a tmpfs in a private mount namespace; a file-size
/// limit where mounting is refused): it stops naming the file and the OS reason, the complete
/// sample lines stay, and the rerun resumes from them once space is back.
#[test]
fn eval_on_a_full_disk_keeps_complete_lines_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (fs, keep) = (tmp.path().join("fs"), tmp.path().join("kept"));
    std::fs::create_dir_all(&fs).unwrap();
    std::fs::create_dir_all(&keep).unwrap();
    let eval = format!(
        "\"{}\" eval --model default --bench gsm8k --limit 14 --greedy --batch 1 \
         --max-new-tokens 48 --out \"$FS/ev\"",
        env!("CARGO_BIN_EXE_egi")
    );
    // run 1 on the full disk, keep what it left, give the space back, run 2
    let body = format!(
        "{eval} 2> \"$KEEP/err1\"; echo $? > \"$KEEP/rc1\"; cp -r \"$FS/ev\" \"$KEEP/ev1\"; \
         rm -f \"$FS/ballast\"; ulimit -f unlimited 2>/dev/null; \
         {eval} 2> \"$KEEP/err2\"; echo $? > \"$KEEP/rc2\"; cp -r \"$FS/ev\" \"$KEEP/ev2\""
    );
    let tmpfs = format!(
        "mount -t tmpfs -o size=1m egi-test \"$FS\" || exit 77; \
         dd if=/dev/zero of=\"$FS/ballast\" bs=4k 2>/dev/null; truncate -s -12K \"$FS/ballast\"; {body}"
    );
    let run = |script: &str, unshare: bool| {
        let mut c = if unshare {
            let mut c = Command::new("unshare");
            c.args(["-m", "sh", "-c", script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        };
        c.env("FS", &fs).env("KEEP", &keep).output()
    };
    let mode = match run(&tmpfs, true) {
        Ok(o) if o.status.code() != Some(77) => "tmpfs",
        _ => {
            // SIGXFSZ ignored, so the refused write is an error (EFBIG) the command reports
            let limited = format!("trap '' XFSZ; ulimit -f 8; {body}");
            run(&limited, false).unwrap();
            "fsize"
        }
    };
    let read = |n: &str| std::fs::read_to_string(keep.join(n)).unwrap_or_default();
    let err1 = read("err1");
    assert_ne!(
        read("rc1").trim(),
        "0",
        "{mode}: eval succeeded on a full disk"
    );
    let reason = if mode == "tmpfs" {
        "No space left on device"
    } else {
        "File too large"
    };
    assert!(
        err1.contains(reason) && err1.contains("/ev"),
        "{mode}: {err1}"
    );
    assert_eq!(
        err1.trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "{err1}"
    );
    // every complete line of the interrupted run is a whole record
    let partial = read("ev1/samples.partial.jsonl");
    let lines: Vec<&str> = partial.lines().collect();
    let whole = lines
        .iter()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    assert!(
        whole + 1 >= lines.len(),
        "{mode}: more than the last line is torn"
    );
    // space back: the rerun resumes from the kept lines and finishes
    let err2 = read("err2");
    assert_eq!(read("rc2").trim(), "0", "{mode}: {err2}");
    if whole > 0 {
        assert!(
            err2.contains(&format!("resuming: {whole} problems already done")),
            "{err2}"
        );
    }
    let done = read("ev2/samples.jsonl");
    assert_eq!(done.lines().count(), 14, "{mode}: {done}");
    println!("full disk ({mode}): eval stopped after {whole} complete samples, resumed to 14");
}
