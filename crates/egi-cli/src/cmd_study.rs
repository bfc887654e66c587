//! `egi study`: the paper's findings at small scale, end to end, as one command and one report.
//!
//! The study is a fixed list of egi commands (data, fingerprints, SFT, GRPO and CorR-PO, evals,
//! comparisons, plots). Each runs as a child process with its log in DIR/logs/ and leaves a
//! marker in DIR/stages/ when it succeeds, so rerunning the same command continues with the
//! first unfinished stage (training and evaluation also resume inside a stage). The report
//! (study_report.rs) is then written from the JSON those commands produced: no number in it
//! is typed by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::common::write_atomic;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
egi study --config configs/study.toml --out runs/study        (the default study, about 1-2 h on 2 cores)\n  \
egi study --quick --out runs/study-quick                      (every stage at toy size, minutes)\n  \
egi study --out runs/study --report-only                      (rewrite the report from the outputs)\n\n\
Rerun the same command after an interruption: finished stages are skipped.")]
pub struct Args {
    /// Study settings, TOML or JSON (keys as in DIR/study_config.json; unknown keys are an
    /// error). Without it: the settings of the study already in --out, else the defaults of
    /// configs/study.toml (or the --quick ones).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Start from toy-size settings (a smoke test of every stage; the numbers mean nothing).
    #[arg(long)]
    pub quick: bool,
    /// Output directory: stage outputs, logs, and report/ (report.md, report.html, plots).
    #[arg(long)]
    pub out: PathBuf,
    /// Only rewrite the report from the outputs already in --out.
    #[arg(long)]
    pub report_only: bool,
    /// Print the study's commands and exit.
    #[arg(long)]
    pub dry_run: bool,
}

/// Every knob of the study. Field names are the config file's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StudyConfig {
    /// Model to study (any --model value).
    pub model: String,
    /// Read GSM8K from this folder (gsm8k/train.jsonl, gsm8k/test.jsonl) instead of the copies
    /// bundled with egi.
    pub data_dir: Option<String>,
    pub seed: u64,
    /// Fingerprints: prompts per measurement and response length.
    pub fp_prompts: usize,
    pub fp_max_new_tokens: usize,
    /// Token-level rho (one gradient per token, about 10x a step measurement) on the first
    /// this many of those texts: the level of the paper's figures.
    pub fp_token_prompts: usize,
    /// SFT on GSM8K train solutions: steps, examples per step, learning rate, a fingerprint
    /// every `sft_fp_every` steps (and at step 0), response tokens kept.
    pub sft_steps: usize,
    pub sft_batch: usize,
    pub sft_lr: f64,
    pub sft_fp_every: usize,
    pub sft_max_len: usize,
    /// GRPO and CorR-PO on generated arithmetic (one to three steps), same seed and budget.
    pub rl_train_problems: usize,
    pub rl_steps: usize,
    pub rl_batch_prompts: usize,
    pub rl_group_size: usize,
    pub rl_max_new_tokens: usize,
    pub rl_lr: f64,
    pub rl_lambda: f64,
    /// Held-out evaluation: problems per arithmetic step count, GSM8K test problems, length.
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
            fp_max_new_tokens: 160,
            fp_token_prompts: 8,
            sft_steps: 80,
            sft_batch: 4,
            sft_lr: 1e-5,
            sft_fp_every: 20,
            sft_max_len: 256,
            rl_train_problems: 2000,
            rl_steps: 12,
            rl_batch_prompts: 2,
            rl_group_size: 8,
            rl_max_new_tokens: 128,
            rl_lr: 3e-6,
            rl_lambda: 0.1,
            eval_arith: 40,
            eval_gsm8k: 30,
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
            sft_steps: 2,
            sft_batch: 1,
            sft_fp_every: 2,
            sft_max_len: 64,
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
            ("sft_steps", self.sft_steps),
            ("sft_batch", self.sft_batch),
            ("sft_fp_every", self.sft_fp_every),
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

    /// SFT steps at which the fingerprint is measured (0 = the model itself).
    pub fn sft_fp_steps(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..=self.sft_steps).step_by(self.sft_fp_every).collect();
        if *v.last().unwrap() != self.sft_steps {
            v.push(self.sft_steps);
        }
        v
    }
}

/// The models compared after RL, in report order: (label, output name).
pub const RL_MODELS: [(&str, &str); 3] = [
    ("default model", "base"),
    ("GRPO", "grpo"),
    ("CorR-PO", "corr-po"),
];

/// Held-out evaluation sets: (label, output name).
pub fn eval_sets() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = (1..=3)
        .map(|k| {
            (
                format!("arithmetic, {k} step{}", if k > 1 { "s" } else { "" }),
                format!("arith{k}"),
            )
        })
        .collect();
    v.push(("GSM8K test subset".into(), "gsm8k".into()));
    v
}

/// One stage: a name (its marker and log) and the egi arguments.
pub struct Stage {
    pub name: String,
    pub args: Vec<String>,
}

fn ckpt(run: &Path, step: usize) -> String {
    run.join("checkpoints")
        .join(format!("step-{step:06}"))
        .display()
        .to_string()
}

/// The study's commands, in order. Paths are under `dir`.
pub fn stages(c: &StudyConfig, dir: &Path) -> Vec<Stage> {
    let p = |s: &str| dir.join(s).display().to_string();
    let (gsm_test, gsm_train) = match &c.data_dir {
        None => ("gsm8k".to_string(), "gsm8k-train".to_string()),
        Some(d) => (
            Path::new(d).join("gsm8k/test.jsonl").display().to_string(),
            Path::new(d).join("gsm8k/train.jsonl").display().to_string(),
        ),
    };
    let mut st: Vec<Stage> = vec![];
    let mut add = |name: &str, args: Vec<String>| {
        st.push(Stage {
            name: name.into(),
            args,
        })
    };
    let s = |x: &str| x.to_string();
    let n = |x: usize| x.to_string();
    let f = |x: f64| format!("{x}");
    // 1. Data: RL training problems, held-out problems by step count, a mixed held-out set.
    add(
        "data-train",
        vec![
            s("data"),
            s("arith"),
            s("--n"),
            n(c.rl_train_problems),
            s("--seed"),
            n(c.seed as usize),
            s("--steps"),
            s("1..3"),
            s("--out"),
            p("data/arith-train.jsonl"),
        ],
    );
    for k in 1..=3 {
        add(
            &format!("data-heldout-{k}"),
            vec![
                s("data"),
                s("arith"),
                s("--n"),
                n(c.eval_arith),
                s("--seed"),
                n(c.seed as usize + 1000 + k),
                s("--steps"),
                format!("{k}..{k}"),
                s("--out"),
                p(&format!("data/arith-heldout-{k}.jsonl")),
            ],
        );
    }
    add(
        "data-heldout-mixed",
        vec![
            s("data"),
            s("arith"),
            s("--n"),
            n(c.fp_prompts),
            s("--seed"),
            n(c.seed as usize + 2000),
            s("--steps"),
            s("1..3"),
            s("--out"),
            p("data/arith-heldout-mixed.jsonl"),
        ],
    );
    // 2. Fingerprint of the model with its own responses.
    let fp = |model: &str, data: &str, out: String| -> Vec<String> {
        vec![
            s("fingerprint"),
            s("--model"),
            s(model),
            s("--generate"),
            s("--data"),
            s(data),
            s("--n-prompts"),
            n(c.fp_prompts),
            s("--max-new-tokens"),
            n(c.fp_max_new_tokens),
            s("--step-mode"),
            s("mean-logit"),
            s("--out"),
            out,
        ]
    };
    add("fp-base-gsm8k", fp(&c.model, &gsm_test, p("fp/base-gsm8k")));
    add(
        "fp-base-arith",
        fp(
            &c.model,
            &p("data/arith-heldout-mixed.jsonl"),
            p("fp/base-arith"),
        ),
    );
    // 3. SFT on GSM8K solutions, the fingerprint at checkpoints.
    let sft = dir.join("sft");
    add(
        "sft",
        vec![
            s("sft"),
            s("--model"),
            c.model.clone(),
            s("--data"),
            gsm_train,
            s("--out"),
            sft.display().to_string(),
            s("--resume"),
            s("--max-steps"),
            n(c.sft_steps),
            s("--batch-size"),
            n(c.sft_batch),
            s("--max-len"),
            n(c.sft_max_len),
            s("--lr"),
            f(c.sft_lr),
            s("--save-every"),
            n(c.sft_fp_every),
            s("--keep-last"),
            n(c.sft_steps / c.sft_fp_every + 2),
            s("--seed"),
            n(c.seed as usize),
        ],
    );
    let mut sft_fps = vec![p("fp/base-gsm8k")];
    for step in c.sft_fp_steps().into_iter().filter(|&s| s > 0) {
        let out = p(&format!("fp/sft-step-{step}"));
        add(
            &format!("fp-sft-{step}"),
            fp(&ckpt(&sft, step), &gsm_test, out.clone()),
        );
        sft_fps.push(out);
    }
    // Each checkpoint answers the same prompts itself: paired by prompt.
    let mut cmp = vec![s("fingerprint"), s("compare")];
    cmp.extend(sft_fps);
    cmp.extend([s("--out"), p("fp/cmp-sft"), s("--pair-by"), s("prompt")]);
    add("fp-compare-sft", cmp);
    add(
        "plot-sft",
        vec![
            s("plot"),
            sft.display().to_string(),
            s("--out"),
            p("plots/sft"),
            s("--title"),
            s("SFT on GSM8K solutions"),
        ],
    );
    // 4. GRPO and CorR-PO from the same model, seed, data and budget.
    for (_, algo) in &RL_MODELS[1..] {
        add(
            &format!("train-{algo}"),
            vec![
                s("train"),
                s("--algo"),
                s(algo),
                s("--model"),
                c.model.clone(),
                s("--data"),
                p("data/arith-train.jsonl"),
                s("--out"),
                p(&format!("rl/{algo}")),
                s("--resume"),
                s("--max-steps"),
                n(c.rl_steps),
                s("--batch-prompts"),
                n(c.rl_batch_prompts),
                s("--group-size"),
                n(c.rl_group_size),
                s("--max-new-tokens"),
                n(c.rl_max_new_tokens),
                s("--lr"),
                f(c.rl_lr),
                s("--lambda"),
                f(c.rl_lambda),
                s("--save-every"),
                n(c.rl_steps.div_ceil(2)),
                s("--seed"),
                n(c.seed as usize),
            ],
        );
    }
    add(
        "plot-rl",
        vec![
            s("plot"),
            p("rl/grpo"),
            p("rl/corr-po"),
            s("--out"),
            p("plots/rl"),
            s("--title"),
            s("GRPO vs CorR-PO"),
        ],
    );
    // 5. Held-out evaluation of the three models, and paired comparisons.
    let model_of = |name: &str| -> String {
        match name {
            "base" => c.model.clone(),
            algo => ckpt(&dir.join("rl").join(algo), c.rl_steps),
        }
    };
    for (_, m) in RL_MODELS {
        for (_, set) in eval_sets() {
            let (bench, limit) = if set == "gsm8k" {
                (gsm_test.clone(), c.eval_gsm8k)
            } else {
                (
                    p(&format!("data/arith-heldout-{}.jsonl", &set[5..])),
                    c.eval_arith,
                )
            };
            add(
                &format!("eval-{m}-{set}"),
                vec![
                    s("eval"),
                    s("--model"),
                    model_of(m),
                    s("--bench"),
                    bench,
                    s("--limit"),
                    n(limit),
                    s("--greedy"),
                    s("--max-new-tokens"),
                    n(c.eval_max_new_tokens),
                    s("--out"),
                    p(&format!("eval/{m}-{set}")),
                ],
            );
        }
    }
    for (a, b) in [("base", "grpo"), ("base", "corr-po"), ("grpo", "corr-po")] {
        for (_, set) in eval_sets() {
            add(
                &format!("compare-{b}-vs-{a}-{set}"),
                vec![
                    s("eval"),
                    s("compare"),
                    p(&format!("eval/{a}-{set}")),
                    p(&format!("eval/{b}-{set}")),
                    s("--out"),
                    p(&format!("eval/compare-{b}-vs-{a}-{set}.json")),
                ],
            );
        }
    }
    // 6. The fingerprint after RL, on the same texts as the default model's (paired tests).
    for (_, m) in &RL_MODELS[1..] {
        add(
            &format!("fp-{m}-arith"),
            vec![
                s("fingerprint"),
                s("--model"),
                model_of(m),
                s("--input"),
                p("fp/base-arith/responses.jsonl"),
                s("--step-mode"),
                s("mean-logit"),
                s("--out"),
                p(&format!("fp/{m}-arith")),
            ],
        );
    }
    add(
        "fp-compare-rl",
        vec![
            s("fingerprint"),
            s("compare"),
            p("fp/base-arith"),
            p("fp/grpo-arith"),
            p("fp/corr-po-arith"),
            s("--out"),
            p("fp/cmp-rl"),
        ],
    );
    // 7. Token-level rho, the level of the paper's figures, on the first fp_token_prompts
    // texts of the step measurements above (METHOD's `mean` step rho comes with it).
    let token_fp = |model: String, texts: &str, out: &str| -> Vec<String> {
        vec![
            s("fingerprint"),
            s("--model"),
            model,
            s("--input"),
            p(&format!("fp/{texts}/responses.jsonl")),
            s("--limit"),
            n(c.fp_token_prompts),
            s("--step-mode"),
            s("mean"),
            s("--out"),
            p(&format!("fp/{out}")),
        ]
    };
    let last = format!("sft-step-{}", c.sft_steps);
    for (name, model, texts) in [
        ("base-gsm8k", c.model.clone(), "base-gsm8k"),
        ("base-arith", c.model.clone(), "base-arith"),
        (last.as_str(), ckpt(&sft, c.sft_steps), last.as_str()),
        ("grpo-arith", model_of("grpo"), "base-arith"),
        ("corr-po-arith", model_of("corr-po"), "base-arith"),
    ] {
        add(
            &format!("fp-{name}-token"),
            token_fp(model, texts, &format!("{name}-token")),
        );
    }
    add(
        "fp-compare-sft-token",
        vec![
            s("fingerprint"),
            s("compare"),
            p("fp/base-gsm8k-token"),
            p(&format!("fp/{last}-token")),
            s("--out"),
            p("fp/cmp-sft-token"),
            s("--pair-by"),
            s("prompt"),
        ],
    );
    add(
        "fp-compare-rl-token",
        vec![
            s("fingerprint"),
            s("compare"),
            p("fp/base-arith-token"),
            p("fp/grpo-arith-token"),
            p("fp/corr-po-arith-token"),
            s("--out"),
            p("fp/cmp-rl-token"),
        ],
    );
    st
}

fn shell_quote(a: &str) -> String {
    if a.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

pub fn command_line(st: &Stage) -> String {
    std::iter::once("egi".to_string())
        .chain(st.args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_stage(exe: &Path, dir: &Path, st: &Stage) -> Result<bool> {
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

pub fn run(a: Args) -> Result<()> {
    let cfg: StudyConfig = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            let base = if a.quick {
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
        None => match std::fs::read_to_string(a.out.join("study_config.json")) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not a study config",
                    a.out.join("study_config.json").display()
                )
            })?,
            Err(_) if a.quick => StudyConfig::quick(),
            Err(_) => StudyConfig::default(),
        },
    };
    cfg.validate()?;
    let dir = &a.out;
    let list = stages(&cfg, dir);
    if a.dry_run {
        for st in &list {
            println!("{}", command_line(st));
        }
        return Ok(());
    }
    let _lock = crate::lock::lock_dir(dir)?;
    if !a.report_only {
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
            if serde_json::to_value(&old)? != serde_json::to_value(&cfg)? {
                bail!(
                    "{} holds a study with other settings ({}); use another --out, or the same settings to resume",
                    dir.display(),
                    saved.display()
                );
            }
        }
        write_atomic(&saved, serde_json::to_string_pretty(&cfg)?.as_bytes())?;
        let script: String = list.iter().map(|s| command_line(s) + "\n").collect();
        write_atomic(&dir.join("commands.sh"), script.as_bytes())?;
        let exe = std::env::current_exe().context("cannot locate the egi executable")?;
        let bar = crate::common::progress(list.len() as u64, "study");
        for st in &list {
            bar.set_message(st.name.clone());
            let ran = run_stage(&exe, dir, st)?;
            if ran {
                bar.println(format!("done: {}", st.name));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    let report = crate::study_report::write(dir, &cfg, &list)?;
    println!("wrote {}", report.display());
    Ok(())
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
}
