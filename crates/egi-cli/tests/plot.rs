//! `egi plot` on synthetic training runs: figures and CSV written, runs named from their
//! directories or config.json, nulls and missing metrics tolerated, clear errors otherwise.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

fn egi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egi"))
}

fn plot(args: &[&str], runs: &[&Path], out: &Path) -> Output {
    egi()
        .arg("plot")
        .args(runs)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_lines(path: &Path, lines: &[serde_json::Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// A GRPO-like run (no rho_mean, a null accuracy) named by config.json, with eval.jsonl.
fn grpo_run(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let lines: Vec<_> = (0..20)
        .map(|s| {
            json!({"step": s, "reward_mean": 0.2 + 0.01 * s as f64, "accuracy":
                if s == 7 { serde_json::Value::Null } else { json!(0.3) },
                "rho_mean": null, "kl": 0.0, "lr": 1e-6, "loss": 0.5 / (s + 1) as f64})
        })
        .collect();
    write_lines(&dir.join("metrics.jsonl"), &lines);
    write_lines(
        &dir.join("eval.jsonl"),
        &[
            json!({"step": 0, "accuracy": 0.3, "ci95": [0.2, 0.4]}),
            json!({"step": 19, "accuracy": 0.4, "ci95": [0.3, 0.5]}),
        ],
    );
    std::fs::write(
        dir.join("config.json"),
        json!({"name": "base", "algo": "grpo"}).to_string(),
    )
    .unwrap();
}

/// A shorter run with rho_mean but no loss, named by its directory.
fn corr_run(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let lines: Vec<_> = (0..10)
        .map(|s| {
            json!({"step": s, "reward_mean": 0.25, "accuracy": 0.35, "rho_mean": -0.1,
                   "kl": 0.001 * s as f64, "lr": 1e-6})
        })
        .collect();
    write_lines(&dir.join("metrics.jsonl"), &lines);
}

#[test]
fn plots_two_runs_with_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("run-a"), tmp.path().join("corr-b"));
    grpo_run(&a);
    corr_run(&b);
    let out = tmp.path().join("plots");
    let o = plot(&["--smooth", "0.8"], &[&a, &b], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("base (grpo)") && stdout.contains("corr-b"),
        "{stdout}"
    );

    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let png = std::fs::read(out.join("curves.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);

    let csv = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("run,step,metric,value"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == 4));
    let count = |run: &str, metric: &str| {
        rows.iter()
            .filter(|r| r[0] == run && r[2] == metric)
            .count()
    };
    // Default metrics: reward_mean, accuracy, rho_mean, kl, loss, lr (+ eval), no nulls.
    assert_eq!(count("base (grpo)", "reward_mean"), 20);
    assert_eq!(count("base (grpo)", "accuracy"), 19);
    assert_eq!(count("base (grpo)", "rho_mean"), 0);
    assert_eq!(count("corr-b", "rho_mean"), 10);
    assert_eq!(count("corr-b", "loss"), 0);
    assert_eq!(count("base (grpo)", "eval_accuracy"), 2);
    assert_eq!(count("base (grpo)", "eval_accuracy_ci95_lo"), 2);
    let expected = (20 + 19 + 20 + 20 + 20) + 3 * 2 + (10 * 5);
    assert_eq!(rows.len(), expected, "{csv}");
    assert!(!csv.contains("NaN") && !csv.contains("null"));
    let step19 = rows
        .iter()
        .find(|r| r[0] == "base (grpo)" && r[2] == "reward_mean" && r[1] == "19")
        .unwrap();
    assert!((step19[3].parse::<f64>().unwrap() - 0.39).abs() < 1e-12);

    // --metrics picks and orders panels; the CSV follows.
    let out2 = tmp.path().join("sel");
    let o = plot(&["--metrics", "kl,reward_mean"], &[&a, &b], &out2);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out2.join("curves.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * (20 + 10));
    let first = csv.lines().nth(1).unwrap();
    assert!(first.starts_with("base (grpo),0,kl,"), "{first}");
}

#[test]
fn clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("plots");

    // Not a run directory.
    let empty = tmp.path().join("not-a-run");
    std::fs::create_dir_all(&empty).unwrap();
    let o = plot(&[], &[&empty], &out);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("not-a-run/metrics.jsonl not found") && e.contains("egi train"),
        "{e}"
    );

    // A malformed line: file and line number.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("metrics.jsonl"),
        "{\"step\": 0, \"loss\": 1.0}\n{\"step\": 1, \"loss\": \n{\"step\": 2, \"loss\": 0.5}\n",
    )
    .unwrap();
    let o = plot(&[], &[&bad], &out);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("bad/metrics.jsonl:2"), "{e}");

    // An unknown metric: the available ones are listed.
    let good = tmp.path().join("good");
    corr_run(&good);
    let o = plot(&["--metrics", "reward_mean,rewrd"], &[&good], &out);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("\"rewrd\"") && e.contains("reward_mean, accuracy, rho_mean, kl, lr"),
        "{e}"
    );
    assert!(!out.join("curves.png").exists());

    // A run still being written (last line cut short, no newline) is plotted up to there.
    let live = tmp.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(
        live.join("metrics.jsonl"),
        "{\"step\": 0, \"loss\": 1.0}\n{\"step\": 1, \"loss\": 0.9}\n{\"step\": 2, \"lo",
    )
    .unwrap();
    let o = plot(&[], &[&live], &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    assert_eq!(
        csv,
        "run,step,metric,value\nlive,0,loss,1\nlive,1,loss,0.9\n"
    );
}
