//! The study's settings: every knob, their defaults (those of `configs/study.toml`), the
//! toy-size `--quick` ones, and reading them from a file or from a study already started.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Every knob of the study. Field names are the config file's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StudyConfig {
    /// Model to study (any --model value).
    pub model: String,
    /// Read GSM8K from this folder (gsm8k/test.jsonl) instead of the copy bundled with egi.
    pub data_dir: Option<String>,
    pub seed: u64,
    /// Fingerprints: held-out problems per measurement and response length.
    pub fp_prompts: usize,
    pub fp_max_new_tokens: usize,
    /// Token-level rho (one gradient per token, about 10x a step measurement) on the first
    /// this many of those texts: the level of the paper's figures.
    pub fp_token_prompts: usize,
    /// SFT on exact worked solutions of generated arithmetic (`egi data arith --solutions`,
    /// one to four steps): traces, steps, examples per step, learning rate, a fingerprint and
    /// a held-out evaluation every `sft_fp_every` steps (and at step 0), response tokens kept.
    pub sft_traces: usize,
    pub sft_steps: usize,
    pub sft_batch: usize,
    pub sft_lr: f64,
    pub sft_fp_every: usize,
    pub sft_max_len: usize,
    /// GRPO and CorR-PO from the SFT model on generated arithmetic (one to four steps), the
    /// same data, budget and seeds (`seed`, `seed + 1`, ...: `rl_seeds` runs of each).
    pub rl_seeds: usize,
    pub rl_train_problems: usize,
    pub rl_steps: usize,
    pub rl_batch_prompts: usize,
    pub rl_group_size: usize,
    pub rl_max_new_tokens: usize,
    pub rl_lr: f64,
    pub rl_lambda: f64,
    /// GRPO's first seed measures its rollouts' rho too (`--measure-rho true`: logged, not
    /// rewarded), so that both algorithms' rollout rho can be followed; it costs a
    /// fingerprint per step, as CorR-PO's, hence one seed only.
    pub rl_measure_rho: bool,
    /// Held-out greedy evaluation: problems per arithmetic step count (1-4; also the size of
    /// the 2-3 step set of the SFT checkpoints), GSM8K test problems, response length.
    pub eval_arith: usize,
    pub eval_gsm8k: usize,
    pub eval_max_new_tokens: usize,
}

impl Default for StudyConfig {
    fn default() -> Self {
        StudyConfig {
            model: "default".into(),
            data_dir: None,
            seed: 1,
            fp_prompts: 16,
            fp_max_new_tokens: 128,
            fp_token_prompts: 6,
            sft_traces: 4000,
            sft_steps: 120,
            sft_batch: 8,
            sft_lr: 5e-5,
            sft_fp_every: 40,
            sft_max_len: 256,
            rl_seeds: 3,
            rl_train_problems: 2000,
            rl_steps: 12,
            rl_batch_prompts: 2,
            rl_group_size: 8,
            rl_max_new_tokens: 160,
            rl_lr: 3e-6,
            rl_lambda: 0.1,
            rl_measure_rho: true,
            eval_arith: 30,
            eval_gsm8k: 20,
            eval_max_new_tokens: 256,
        }
    }
}

impl StudyConfig {
    /// Toy sizes: every stage runs, in minutes.
    pub fn quick() -> Self {
        StudyConfig {
            fp_prompts: 3,
            fp_max_new_tokens: 48,
            fp_token_prompts: 2,
            sft_traces: 20,
            sft_steps: 2,
            sft_batch: 1,
            sft_fp_every: 2,
            sft_max_len: 64,
            rl_seeds: 2,
            rl_train_problems: 20,
            rl_steps: 1,
            rl_batch_prompts: 1,
            rl_group_size: 2,
            rl_max_new_tokens: 32,
            eval_arith: 3,
            eval_gsm8k: 3,
            eval_max_new_tokens: 48,
            ..StudyConfig::default()
        }
    }

    fn validate(&self) -> Result<()> {
        let pos = [
            ("fp_prompts", self.fp_prompts),
            ("fp_max_new_tokens", self.fp_max_new_tokens),
            ("fp_token_prompts", self.fp_token_prompts),
            ("sft_traces", self.sft_traces),
            ("sft_steps", self.sft_steps),
            ("sft_batch", self.sft_batch),
            ("sft_fp_every", self.sft_fp_every),
            ("rl_seeds", self.rl_seeds),
            ("rl_train_problems", self.rl_train_problems),
            ("rl_steps", self.rl_steps),
            ("rl_batch_prompts", self.rl_batch_prompts),
            ("eval_arith", self.eval_arith),
            ("eval_gsm8k", self.eval_gsm8k),
        ];
        for (k, v) in pos {
            if v == 0 {
                bail!("study config: {k} must be at least 1");
            }
        }
        if self.rl_group_size < 2 {
            bail!("study config: rl_group_size must be at least 2 (group advantages)");
        }
        Ok(())
    }

    /// The RL seeds: `seed`, `seed + 1`, ... (`rl_seeds` of them).
    pub fn rl_seed_list(&self) -> Vec<u64> {
        (0..self.rl_seeds as u64).map(|k| self.seed + k).collect()
    }

    /// SFT steps at which the fingerprint is measured (0 = the model itself).
    pub fn sft_fp_steps(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..=self.sft_steps).step_by(self.sft_fp_every).collect();
        if *v.last().unwrap() != self.sft_steps {
            v.push(self.sft_steps);
        }
        v
    }
}

impl StudyConfig {
    /// The settings of a study: `config` (TOML or JSON; its keys override the defaults, or the
    /// `quick` ones), else those saved in `out` by a study already started, else the defaults.
    pub fn load(config: Option<&Path>, quick: bool, out: &Path) -> Result<StudyConfig> {
        let cfg: StudyConfig = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                let base = if quick {
                    StudyConfig::quick()
                } else {
                    StudyConfig::default()
                };
                // Keys in the file override the base settings.
                let mut v = serde_json::to_value(&base)?;
                let over: serde_json::Value = if path.extension().is_some_and(|e| e == "json") {
                    serde_json::from_str(&text)
                        .with_context(|| format!("{}: not valid JSON", path.display()))?
                } else {
                    let t: toml::Value = toml::from_str(&text)
                        .with_context(|| format!("{}: not valid TOML", path.display()))?;
                    serde_json::to_value(t)?
                };
                let obj = over
                    .as_object()
                    .with_context(|| format!("{}: expected a table of settings", path.display()))?;
                for (k, x) in obj {
                    v[k] = x.clone();
                }
                serde_json::from_value(v).with_context(|| {
                    format!(
                        "{}: bad study config (keys as in configs/study.toml)",
                        path.display()
                    )
                })?
            }
            // No file: the settings of the study already in --out (resume, --report-only), else
            // the defaults.
            None => match std::fs::read_to_string(out.join("study_config.json")) {
                Ok(text) => serde_json::from_str(&text).with_context(|| {
                    format!(
                        "{}: not a study config",
                        out.join("study_config.json").display()
                    )
                })?,
                Err(_) if quick => StudyConfig::quick(),
                Err(_) => StudyConfig::default(),
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A study saved by an egi that lacked a later key reads back with that key's default,
    /// so it resumes under the same settings.
    #[test]
    fn saved_settings_without_a_newer_key_read_as_its_default() {
        let mut saved = serde_json::to_value(StudyConfig::default()).unwrap();
        saved.as_object_mut().unwrap().remove("fp_token_prompts");
        let old: StudyConfig = serde_json::from_value(saved).unwrap();
        assert_eq!(
            serde_json::to_value(&old).unwrap(),
            serde_json::to_value(StudyConfig::default()).unwrap()
        );
    }

    /// configs/study.toml holds the defaults and configs/study-quick.toml the --quick
    /// settings: the files users start from say what the code does.
    #[test]
    fn the_config_files_are_the_defaults_and_the_quick_settings() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let dir = std::env::temp_dir().join("egi-study-config-test-none");
        for (file, quick, want) in [
            ("study.toml", false, StudyConfig::default()),
            ("study-quick.toml", true, StudyConfig::quick()),
        ] {
            let got = StudyConfig::load(Some(&root.join(file)), quick, &dir).unwrap();
            assert_eq!(
                serde_json::to_value(&got).unwrap(),
                serde_json::to_value(&want).unwrap(),
                "{file}"
            );
            // Every key is written out, so the file documents all of them.
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let keys: toml::Table = toml::from_str(&text).unwrap();
            if !quick {
                for k in serde_json::to_value(&want)
                    .unwrap()
                    .as_object()
                    .unwrap()
                    .keys()
                {
                    assert!(
                        k == "data_dir" || keys.contains_key(k),
                        "{file}: {k} missing"
                    );
                }
            }
        }
    }
}
