//! `egi train` (RL from verifiable rewards) and `egi sft` (supervised fine-tuning).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use egi_rl::sft::{self, SftConfig, SftFlags, SftTrainer};
use egi_rl::{MathTask, Task, TrainConfig, TrainFlags, Trainer};

use crate::common::{load_model, progress};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
egi data arith --n 2000 --seed 1 --steps 1..2 --out arith.jsonl\n  \
egi train --algo corr-po --model default --data arith.jsonl --out runs/corrpo --max-steps 50\n  \
egi train --algo grpo --model default --data arith.jsonl --out runs/grpo --max-steps 50\n  \
egi train --config train.toml --out runs/dapo --algo dapo --lr 2e-6   (flags override the file)\n  \
egi train --out runs/corrpo --resume   (continues exactly where the last checkpoint left off)\n  \
egi plot runs/grpo runs/corrpo --out plots\n\n\
Outputs in RUN: config.json (the full configuration), metrics.jsonl (one line per step:\n\
reward and its components, accuracy, rho, entropy, KL, clip fraction, ratios, lengths,\n\
grad norm, lr, seconds per phase), rollouts.jsonl (every response and its reward),\n\
eval.jsonl (held-out accuracy, with --eval-data), checkpoints/step-N (HF model directories\n\
that egi eval / egi fingerprint load, plus optimizer and trainer state).")]
pub struct TrainArgs {
    /// Run directory (created; with --resume, continued).
    #[arg(long)]
    out: PathBuf,
    /// TOML or JSON file with any of the settings (keys as in RUN/config.json, and as the
    /// flags below with `_` for `-`); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from RUN's latest checkpoint (weights, optimizer, schedule, data position).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    settings: TrainFlags,
}

/// The file given (or the run's own config.json when resuming), under the flags.
fn settings<C: serde::de::DeserializeOwned + Default>(
    file: Option<&Path>,
    out: &Path,
    resume: bool,
) -> Result<C> {
    let saved = out.join("config.json");
    Ok(match (file, resume && saved.is_file()) {
        (Some(p), _) => egi_rl::config::read_config(p)?,
        (None, true) => egi_rl::config::read_config(&saved)?,
        (None, false) => C::default(),
    })
}

/// The run directory's name.
fn dir_name(out: &Path) -> Option<String> {
    out.file_name().map(|n| n.to_string_lossy().to_string())
}

impl TrainArgs {
    fn config(&self) -> Result<TrainConfig> {
        let mut c: TrainConfig = settings(self.config.as_deref(), &self.out, self.resume)?;
        self.settings.apply(&mut c)?;
        c.name = c.name.or_else(|| dir_name(&self.out));
        c.validate()?;
        Ok(c)
    }
}

pub fn train(a: TrainArgs) -> Result<()> {
    let _lock = crate::lock::lock_dir(&a.out)?;
    let cfg = a.config()?;
    if !a.resume && egi_rl::checkpoint::latest(&a.out).is_some() {
        bail!(
            "{} already holds checkpoints: pass --resume to continue it, or choose another --out",
            a.out.display()
        );
    }
    eprintln!(
        "egi train: configuration (also saved as {}/config.json)",
        a.out.display()
    );
    eprintln!(
        "{}",
        toml::to_string(&cfg).unwrap_or_else(|_| format!("{cfg:#?}"))
    );
    let data_dir = cfg.data_dir.as_deref().map(Path::new);
    let problems =
        egi_eval::data::load_problems(&egi_eval::data::resolve(&cfg.data, data_dir)?, cfg.limit)?;
    let m = load_model(&cfg.model)?;
    let eos = m.eos_ids();
    let egi_model::LoadedModel {
        model,
        tokenizer,
        generation,
        ..
    } = m;
    let tok = &tokenizer.context("the model has no tokenizer: training on text needs one")?;
    let task = MathTask::new(problems, tok, eos.clone(), &cfg.template, cfg.raw)?;
    let eval_task = match &cfg.eval_data {
        Some(d) => Some(MathTask::new(
            egi_eval::data::load_problems(
                &egi_eval::data::resolve(d, data_dir)?,
                Some(cfg.eval_limit),
            )?,
            tok,
            eos,
            &cfg.template,
            cfg.raw,
        )?),
        None => None,
    };
    let mut tr = Trainer::new(
        cfg.clone(),
        model,
        Some(tok),
        generation,
        &task,
        eval_task.as_ref().map(|t| t as &dyn egi_rl::Task),
        &a.out,
        a.resume,
    )?;
    tracing::info!(
        "{} problems; {} trainable parameters; starting at step {}",
        task.len(),
        tr.policy.n_trainable(),
        tr.step
    );
    if tr.step == 0 {
        if let Some(e) = tr.eval_and_log()? {
            eprintln!("held-out accuracy before training: {}", accuracy_line(&e));
        }
    }
    let pb = progress(cfg.max_steps as u64, cfg.algo.name());
    pb.set_position(tr.step as u64);
    let mut last = String::new();
    while !tr.done() {
        if tr.evaluates_after_next_step() {
            pb.set_message(format!("{last} (then the held-out evaluation)"));
        }
        let t = std::time::Instant::now();
        let first = tr.step == 0;
        let m = tr.step()?;
        pb.set_position(tr.step as u64);
        let f = |k: &str| m[k].as_f64().map_or("-".into(), |v| format!("{v:.3}"));
        last = format!(
            "{} r {} acc {} rho {} {}s/step",
            cfg.algo.name(),
            f("reward_mean"),
            f("accuracy"),
            f("rho_mean"),
            f("seconds_step")
        );
        pb.set_message(last.clone());
        if first {
            warn_of_cost(t.elapsed().as_secs_f64(), cfg.max_steps);
        }
        tracing::info!("step {}: {}", tr.step, m);
    }
    pb.finish();
    if let Some(e) = &tr.last_eval {
        eprintln!(
            "held-out accuracy after {} steps: {}",
            tr.step,
            accuracy_line(e)
        );
    }
    println!(
        "trained {} steps -> {} (final checkpoint {})",
        tr.step,
        a.out.display(),
        egi_rl::checkpoint::latest(&a.out)
            .map(|(_, p)| p.display().to_string())
            .unwrap_or_default()
    );
    Ok(())
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
egi sft --model default --data gsm8k-train --out runs/sft --max-steps 200\n  \
egi sft --model default --data pairs.jsonl --out runs/sft --trainable lora --lora-rank 16\n  \
egi sft --out runs/sft --resume\n\n\
Data: JSONL with {\"prompt\", \"response\"}, or GSM8K {\"question\", \"answer\"} (calculator\n\
annotations <<...>> are removed and \"#### N\" becomes \"The final answer is \\boxed{N}.\").\n\
The loss is the mean negative log-likelihood of the response tokens (prompt tokens carry none).")]
pub struct SftArgs {
    /// Run directory (created; with --resume, continued).
    #[arg(long)]
    out: PathBuf,
    /// TOML or JSON file with any of the settings (keys as in RUN/config.json); flags
    /// override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from RUN's latest checkpoint.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    settings: SftFlags,
}

pub fn sft(a: SftArgs) -> Result<()> {
    let _lock = crate::lock::lock_dir(&a.out)?;
    let mut c: SftConfig = settings(a.config.as_deref(), &a.out, a.resume)?;
    a.settings.apply(&mut c)?;
    if c.data.is_empty() {
        bail!("no training data: pass --data FILE.jsonl (or gsm8k-train, bundled with egi)");
    }
    if !a.resume && egi_rl::checkpoint::latest(&a.out).is_some() {
        bail!(
            "{} already holds checkpoints: pass --resume or choose another --out",
            a.out.display()
        );
    }
    eprintln!(
        "egi sft: configuration (also saved as {}/config.json)",
        a.out.display()
    );
    eprintln!("{}", toml::to_string(&c).unwrap_or_default());
    let pairs = sft::read_pairs(&egi_eval::data::resolve(&c.data, None)?, c.limit)?;
    let m = load_model(&c.model)?;
    let eos = m.eos_ids().first().copied();
    let egi_model::LoadedModel {
        model,
        tokenizer,
        generation,
        ..
    } = m;
    let tok = tokenizer.context("the model has no tokenizer: SFT needs one to encode the text")?;
    let examples = sft::encode_examples(&pairs, &tok, eos, &c)?;
    let mut tr = SftTrainer::new(
        c.clone(),
        model,
        Some(&tok),
        generation,
        examples,
        &a.out,
        a.resume,
    )?;
    let pb = progress(c.max_steps as u64, "sft");
    pb.set_position(tr.step as u64);
    while !tr.done() {
        let m = tr.step()?;
        pb.set_position(tr.step as u64);
        pb.set_message(format!(
            "sft loss {:.3}",
            m["loss"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    pb.finish();
    println!("fine-tuned {} steps -> {}", tr.step, a.out.display());
    Ok(())
}

/// "0.125 (2/16, Wilson 95% CI [0.035, 0.360])" from an eval.jsonl line.
fn accuracy_line(e: &serde_json::Value) -> String {
    let ci = e["ci95"]
        .as_array()
        .map(|c| {
            format!(
                ", Wilson 95% CI [{:.3}, {:.3}]",
                c[0].as_f64().unwrap_or(0.0),
                c[1].as_f64().unwrap_or(0.0)
            )
        })
        .unwrap_or_default();
    format!(
        "{:.3} ({}/{}{ci})",
        e["accuracy"].as_f64().unwrap_or(0.0),
        e["correct"],
        e["n"]
    )
}

/// After the first step: the run's estimated duration, said up front when it is long.
fn warn_of_cost(first_step_secs: f64, max_steps: usize) {
    let total = first_step_secs * max_steps as f64;
    if total >= 600.0 {
        eprintln!(
            "note: the first step took {first_step_secs:.0} s; {max_steps} steps will take about {:.1} h \
             here (--max-steps sets fewer; Ctrl-C and --resume continue later)",
            total / 3600.0
        );
    }
}
