//! Run directories: checkpoints (HF model directory + optimizer moments + trainer state, moved
//! into place in one rename; the moments only in the newest), keep-last-K, and the metrics log
//! that resumes with them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// What, besides weights and moments, a run needs to continue exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps completed.
    pub step: usize,
    /// Position in the (seeded, epoch-shuffled) stream of training examples.
    pub cursor: usize,
    pub algo: String,
    pub seed: u64,
}

pub const STATE_FILE: &str = "trainer_state.json";
pub const OPTIM_FILE: &str = "optimizer.safetensors";
pub const ADAPTER_FILE: &str = "adapters.safetensors";

pub fn checkpoints_dir(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

pub fn step_dir(run: &Path, step: usize) -> PathBuf {
    checkpoints_dir(run).join(format!("step-{step:06}"))
}

/// Complete checkpoints (those with a trainer state), oldest first.
pub fn list(run: &Path) -> Vec<(usize, PathBuf)> {
    let mut v: Vec<(usize, PathBuf)> = std::fs::read_dir(checkpoints_dir(run))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name.strip_prefix("step-")?.parse().ok()?;
            e.path()
                .join(STATE_FILE)
                .is_file()
                .then(|| (step, e.path()))
        })
        .collect();
    v.sort();
    v
}

pub fn latest(run: &Path) -> Option<(usize, PathBuf)> {
    list(run).pop()
}

/// Build the checkpoint in a staging directory with `fill`, then rename it into place and
/// drop all but the newest `keep_last`.
pub fn save(
    run: &Path,
    state: &TrainerState,
    keep_last: usize,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let dir = step_dir(run, state.step);
    let staging = checkpoints_dir(run).join(format!(".staging-{:06}", state.step));
    let _ = std::fs::remove_dir_all(&staging);
    let r = (|| -> Result<()> {
        fill(&staging)?;
        let st = staging.join(STATE_FILE);
        std::fs::write(&st, serde_json::to_string_pretty(state)?)
            .with_context(|| format!("{}: cannot write", st.display()))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::rename(&staging, &dir)?;
        Ok(())
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e.context(format!("{}: checkpoint not written", dir.display())));
    }
    let all = list(run);
    if keep_last > 0 && all.len() > keep_last {
        for (_, p) in &all[..all.len() - keep_last] {
            let _ = std::fs::remove_dir_all(p);
        }
    }
    // Only the newest checkpoint, the one `--resume` continues from, keeps the optimizer's
    // moments (twice the weights' size in f32); the older ones keep the model, which is what
    // eval and fingerprint load. Removed only once the new one is in place.
    for (_, p) in list(run).iter().rev().skip(1) {
        let _ = std::fs::remove_file(p.join(OPTIM_FILE));
    }
    Ok(dir)
}

pub fn read_state(dir: &Path) -> Result<TrainerState> {
    let p = dir.join(STATE_FILE);
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a trainer state", p.display()))
}

/// RUN/metrics.jsonl, one object per step, flushed as written. A line cut short by a full
/// disk is dropped on resume (it does not parse), so only complete lines count.
pub struct MetricsLog {
    file: std::fs::File,
    path: PathBuf,
}

impl MetricsLog {
    /// Open for appending. When resuming from `keep_through` = step S, lines of later steps
    /// (written after the checkpoint, before a crash) are dropped first; fresh runs truncate.
    pub fn open(path: &Path, keep_through: Option<usize>) -> Result<Self> {
        let kept: Vec<String> = match keep_through {
            Some(s) if path.exists() => std::fs::read_to_string(path)?
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v.get("step").and_then(|x| x.as_u64()))
                        .is_some_and(|st| st as usize <= s)
                })
                .map(String::from)
                .collect(),
            _ => vec![],
        };
        let tmp = path.with_extension("jsonl.tmp");
        let mut body = kept.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        std::fs::write(&tmp, body).with_context(|| format!("{}: cannot write", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("{}: cannot move into place", path.display()))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        Ok(MetricsLog {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn append(&mut self, v: &serde_json::Value) -> Result<()> {
        let line = format!("{}\n", serde_json::to_string(v)?);
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }
}
