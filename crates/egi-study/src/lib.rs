//! egi-study: the paper's findings at small scale, end to end, as one command and one report.
//!
//! The study is a fixed list of egi commands (data, fingerprints, SFT, GRPO and CorR-PO, evals,
//! comparisons, plots). Each runs as a child process with its log in DIR/logs/ and leaves a
//! marker in DIR/stages/ when it succeeds, so rerunning the same command continues with the
//! first unfinished stage (training and evaluation also resume inside a stage). The report
//! ([`report`]) is then written from the JSON those commands produced: no number in it
//! is typed by hand.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use egi_report::write_atomic;

pub mod config;
pub mod report;
pub mod stages;

pub use config::StudyConfig;
pub use stages::{command_line, stages, Stage};

/// Make the study's folders, refuse a folder holding a study with other settings, and save
/// the settings and the command list (`study_config.json`, `commands.sh`).
pub fn prepare(dir: &Path, cfg: &StudyConfig, list: &[Stage]) -> Result<()> {
    for sub in ["stages", "logs", "data", "fp", "eval", "plots", "rl"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("{}: cannot create", dir.join(sub).display()))?;
    }
    let saved = dir.join("study_config.json");
    if let Ok(old) = std::fs::read_to_string(&saved) {
        // Read through StudyConfig, so a key added by a later egi takes its default and a
        // study started before it still resumes.
        let old: StudyConfig = serde_json::from_str(&old)
            .with_context(|| format!("{}: not a study configuration", saved.display()))?;
        if serde_json::to_value(&old)? != serde_json::to_value(cfg)? {
            bail!(
                "{} holds a study with other settings ({}); use another --out, or the same settings to resume",
                dir.display(),
                saved.display()
            );
        }
    }
    write_atomic(&saved, serde_json::to_string_pretty(cfg)?.as_bytes())?;
    let script: String = list.iter().map(|s| command_line(s) + "\n").collect();
    write_atomic(&dir.join("commands.sh"), script.as_bytes())
}

/// Run one stage with the egi executable `exe` unless its marker says it is done; `true`
/// when it ran.
pub fn run_stage(exe: &Path, dir: &Path, st: &Stage) -> Result<bool> {
    let marker = dir.join("stages").join(format!("{}.done", st.name));
    if marker.exists() {
        return Ok(false);
    }
    let log_path = dir.join("logs").join(format!("{}.log", st.name));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("{}: cannot create", log_path.display()))?;
    let t0 = std::time::Instant::now();
    let status = Command::new(exe)
        .args(&st.args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    if !status.success() {
        let tail: String = std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n  ");
        bail!(
            "stage {} failed ({status}); its log is {}; rerun the same command to resume from this stage. Last lines:\n  {tail}",
            st.name,
            log_path.display()
        );
    }
    write_atomic(
        &marker,
        format!(
            "{}\n{:.1} s\n",
            command_line(st),
            t0.elapsed().as_secs_f64()
        )
        .as_bytes(),
    )?;
    Ok(true)
}

/// Seconds each finished stage took (from its marker), by stage name.
pub fn stage_seconds(dir: &Path) -> Vec<(String, f64)> {
    let mut v = vec![];
    if let Ok(rd) = std::fs::read_dir(dir.join("stages")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(stage) = name.strip_suffix(".done") {
                let secs = std::fs::read_to_string(e.path())
                    .ok()
                    .and_then(|t| {
                        t.lines()
                            .nth(1)
                            .and_then(|l| l.trim_end_matches(" s").parse::<f64>().ok())
                    })
                    .unwrap_or(f64::NAN);
                v.push((stage.to_string(), secs));
            }
        }
    }
    v
}
