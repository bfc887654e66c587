//! `egi train` / `egi sft` end to end on the real default model with a tiny budget: config
//! file + flag overrides, outputs, resume after kill -9, bad data rejected with its line.

use std::path::Path;
use std::process::{Command, Stdio};

fn egi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egi"))
}

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).unwrap();
}

fn problems(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("arith.jsonl");
    let out = egi()
        .args([
            "data", "arith", "--n", "20", "--seed", "3", "--steps", "1", "--out",
        ])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

fn steps(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn train_with_config_file_then_resume_after_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = problems(dir.path());
    let cfg = dir.path().join("train.toml");
    // The file sets a 4-step run, a checkpoint every 2 steps (each is 1.6 GB: weights and
    // AdamW's moments); the flag overrides max_new_tokens.
    write(
        &cfg,
        &format!(
            "algo = \"corr-po\"\nmodel = \"default\"\ndata = \"{}\"\nmax_steps = 4\ngroup_size = 2\n\
             batch_prompts = 1\nmax_new_tokens = 64\nsave_every = 2\nlr = 1e-6\nseed = 5\n\
             eval_data = \"{}\"\neval_limit = 2\n",
            data.display(),
            data.display()
        ),
    );
    let run = dir.path().join("run");
    let mut child = egi()
        .args(["train", "--config"])
        .arg(&cfg)
        .args(["--max-new-tokens", "12", "--out"])
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // kill -9 once the first checkpoint is there
    let t0 = std::time::Instant::now();
    while egi_rl::checkpoint::latest(&run).is_none() {
        assert!(t0.elapsed().as_secs() < 300, "no checkpoint after 300 s");
        if let Some(st) = child.try_wait().unwrap() {
            panic!("egi train exited early: {st}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["algo"], "corr-po");
    assert_eq!(saved["max_new_tokens"], 12, "flags override the file");
    assert_eq!(saved["lambda"], 0.1, "defaults filled in");

    // A fresh start into a run with checkpoints is refused; --resume continues it.
    let out = egi()
        .args(["train", "--out"])
        .arg(&run)
        .args(["--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    let out = egi()
        .args(["train", "--resume", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(steps(&run), vec![1, 2, 3, 4], "each step logged once");
    // The held-out accuracy after training is printed, with its interval, as the one before.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("held-out accuracy after 4 steps: ") && err.contains("Wilson 95% CI ["),
        "{err}"
    );
    let m: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    for k in [
        "reward_mean",
        "reward_acc",
        "reward_corr",
        "accuracy",
        "response_len_mean",
        "grad_norm",
        "lr",
        "seconds_rollout",
        "seconds_fingerprint",
        "fingerprint_gflop",
        "seconds_update",
    ] {
        assert!(m[k].is_number(), "{k} missing in {m}");
    }
    assert!(run.join("rollouts.jsonl").is_file());
    // Only the newest checkpoint keeps the optimizer's moments; the older keep the model.
    let kept = egi_rl::checkpoint::list(&run);
    assert_eq!(kept.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![2, 4]);
    assert!(!kept[0].1.join("optimizer.safetensors").exists());
    assert!(kept[0].1.join("model.safetensors").is_file());
    assert!(kept[1].1.join("optimizer.safetensors").is_file());
    // The final checkpoint is a model directory other commands load.
    let last = egi_rl::checkpoint::latest(&run).unwrap().1;
    let out = egi().args(["info", "--model"]).arg(&last).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_training_input_is_rejected_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.jsonl");
    write(
        &data,
        "{\"problem\": \"1+1?\", \"answer\": \"2\"}\n\n{\"problem\": \"2+2?\"}\n",
    );
    let out = egi()
        .args(["train", "--algo", "grpo", "--data"])
        .arg(&data)
        .args(["--out"])
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.jsonl: line 3 has no usable answer"),
        "{err}"
    );

    let out = egi()
        .args(["train", "--algo", "ppo", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    // clap refuses it, naming the flag and the choices.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'ppo' for '--algo") && err.contains("corr-po"),
        "{err}"
    );
    let cfg = dir.path().join("c.toml");
    write(&cfg, "grup_size = 4\n");
    let out = egi()
        .args(["train", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("c.toml") && err.contains("grup_size"), "{err}");
    let out = egi()
        .args(["train", "--group-size", "1", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("group_size (--group-size) must be at least 2"));
}

#[test]
fn sft_on_gsm8k_solutions_lowers_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gsm.jsonl");
    let train = egi_eval::bundled::find("gsm8k-train").unwrap().text();
    write(&data, &train.lines().take(4).collect::<Vec<_>>().join("\n"));
    let run = dir.path().join("sft");
    let out = egi()
        .args(["sft", "--model", "default", "--data"])
        .arg(&data)
        .args([
            "--max-steps",
            "6",
            "--batch-size",
            "2",
            "--max-len",
            "96",
            "--lr",
            "1e-4",
            "--save-every",
            "3",
            "--out",
        ])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let losses: Vec<f64> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(losses.len(), 6);
    // Two passes over the same 4 examples: the second pass fits them better.
    let first: f64 = losses[..2].iter().sum();
    let last: f64 = losses[4..].iter().sum();
    assert!(last < first, "{losses:?}");
    assert_eq!(egi_rl::checkpoint::list(&run).len(), 2);
}
