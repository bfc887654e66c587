//! `egi train` (RL from verifiable rewards) and `egi sft` (supervised fine-tuning).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use egi_rl::sft::{self, SftConfig, SftTrainer};
use egi_rl::{Algo, Base, MathTask, Task, TrainConfig, Trainable, Trainer};

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
    /// corr-po (CorR-PO: reward + lambda * -(1 + rho_step)), grpo, dr-grpo, dapo, gspo.
    #[arg(long)]
    algo: Option<String>,
    /// CorR-PO's base algorithm: grpo (default), dr-grpo, dapo, gspo.
    #[arg(long)]
    base: Option<String>,
    /// Model: GGUF file, HF directory, `default`, or hub id.
    #[arg(long)]
    model: Option<String>,
    /// Training problems: a JSONL/JSON file with problem + answer (what `egi eval` and
    /// `egi data arith` use), or a bundled set's name (gsm8k, math500, ...; `egi data list`).
    #[arg(long)]
    data: Option<String>,
    /// Read named sets from this folder instead of the copies bundled with egi.
    #[arg(long)]
    data_dir: Option<String>,
    /// Use only the first N problems.
    #[arg(long)]
    limit: Option<usize>,
    /// Run directory (created; with --resume, continued).
    #[arg(long)]
    out: PathBuf,
    /// TOML or JSON file with any of the settings (keys as in RUN/config.json); flags override.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from RUN's latest checkpoint (weights, optimizer, schedule, data position).
    #[arg(long)]
    resume: bool,
    /// Optimizer steps (one rollout batch each; default 100).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Responses sampled per prompt (G; default 8).
    #[arg(long)]
    group_size: Option<usize>,
    /// Prompts per step (default 4).
    #[arg(long)]
    batch_prompts: Option<usize>,
    /// Response length limit (default 256; also DAPO's L_max).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Rollout sampling temperature (default 1.0).
    #[arg(long)]
    temperature: Option<f64>,
    /// Rollout nucleus sampling (default 1.0 = off).
    #[arg(long)]
    top_p: Option<f64>,
    /// Peak learning rate of AdamW (default 1e-6).
    #[arg(long)]
    lr: Option<f64>,
    /// CorR-PO's weight of R_corr = -(1 + rho) (default 0.1).
    #[arg(long)]
    lambda: Option<f64>,
    /// k3 KL weight to the starting model (default 0: no reference model).
    #[arg(long)]
    beta: Option<f64>,
    /// Weight of the format reward (answer given explicitly; default 0 = off).
    #[arg(long)]
    format_weight: Option<f64>,
    /// Passes over each rollout batch (PPO epochs).
    #[arg(long)]
    ppo_epochs: Option<usize>,
    /// Optimizer steps per pass: the rollout batch split into M mini-batches, pi_old frozen at
    /// sampling, so that from the second step on the ratio moves and clipping acts (default
    /// from each paper: GRPO and Dr.GRPO 1, DAPO 16, GSPO 4; at most the number of
    /// micro-batches).
    #[arg(long, value_name = "M")]
    mini_batches: Option<usize>,
    /// Responses per forward/backward pass (memory bound).
    #[arg(long)]
    micro_batch: Option<usize>,
    /// Linear warm-up steps (default 0).
    #[arg(long)]
    warmup_steps: Option<usize>,
    /// constant or cosine.
    #[arg(long)]
    schedule: Option<String>,
    /// Global gradient-norm clip (default 1.0; 0 = off).
    #[arg(long)]
    max_grad_norm: Option<f64>,
    /// all, attention (q/k/v/o only) or lora.
    #[arg(long)]
    trainable: Option<String>,
    /// LoRA rank (default 8).
    #[arg(long)]
    lora_rank: Option<usize>,
    /// LoRA alpha (default 16; the update is scaled by alpha / rank).
    #[arg(long)]
    lora_alpha: Option<f64>,
    /// PartialRows every N steps (and at the end).
    #[arg(long)]
    save_every: Option<usize>,
    /// Checkpoints kept (0 = all).
    #[arg(long)]
    keep_last: Option<usize>,
    /// Seed of the data order and of every rollout.
    #[arg(long)]
    seed: Option<u64>,
    /// Held-out problems for greedy accuracy during training (file or benchmark name).
    #[arg(long)]
    eval_data: Option<String>,
    /// Evaluate every N steps and at the end (default 0 = only with --eval-data, at the end).
    #[arg(long)]
    eval_every: Option<usize>,
    /// Held-out problems evaluated (default 50).
    #[arg(long)]
    eval_limit: Option<usize>,
    /// Prompt template: boxed, plain, or a text containing {problem}.
    #[arg(long)]
    template: Option<String>,
    /// CorR-PO: layers whose q/k/v/o enter rho (e.g. 20-29; default all). The fingerprint's
    /// backward stops at the lowest one, so the top layers alone cost a fraction of all.
    #[arg(long)]
    fp_layers: Option<String>,
    /// CorR-PO: step delimiter of the fingerprint (default "\n").
    #[arg(long)]
    fp_step_delim: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(s: &str, flag: &str, choices: &str) -> Result<T> {
    serde_json::from_value(serde_json::json!(s))
        .map_err(|_| anyhow::anyhow!("--{flag} {s}: use {choices}"))
}

impl TrainArgs {
    fn config(&self) -> Result<TrainConfig> {
        let saved = self.out.join("config.json");
        let mut c = match (&self.config, self.resume && saved.is_file()) {
            (Some(p), _) => TrainConfig::from_file(p)?,
            (None, true) => TrainConfig::from_file(&saved)?,
            (None, false) => TrainConfig::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { c.$f = v.clone(); } )* };
        }
        set!(
            model,
            data,
            max_steps,
            group_size,
            batch_prompts,
            max_new_tokens
        );
        set!(
            temperature,
            top_p,
            lr,
            lambda,
            beta,
            format_weight,
            ppo_epochs,
            micro_batch
        );
        if let Some(m) = self.mini_batches {
            c.mini_batches = Some(m);
        }
        set!(
            warmup_steps,
            max_grad_norm,
            lora_rank,
            lora_alpha,
            save_every,
            keep_last,
            seed
        );
        if self.data_dir.is_some() {
            c.data_dir = self.data_dir.clone();
        }
        set!(eval_every, eval_limit, template);
        if self.limit.is_some() {
            c.limit = self.limit;
        }
        if self.eval_data.is_some() {
            c.eval_data = self.eval_data.clone();
        }
        if let Some(l) = &self.fp_layers {
            c.fp_layers = egi_probe::fingerprint::parse_layers(l, usize::MAX)?;
        }
        if let Some(d) = &self.fp_step_delim {
            c.fp_step_delim = d.replace("\\n", "\n");
        }
        if let Some(a) = &self.algo {
            c.algo = Algo::parse(a)?;
        }
        if let Some(b) = &self.base {
            c.base = parse::<Base>(b, "base", "grpo, dr-grpo, dapo or gspo")?;
        }
        if let Some(s) = &self.schedule {
            c.schedule = parse(s, "schedule", "constant or cosine")?;
        }
        if let Some(t) = &self.trainable {
            c.trainable = parse::<Trainable>(t, "trainable", "all, attention or lora")?;
        }
        if c.name.is_none() {
            c.name = self
                .out
                .file_name()
                .map(|n| n.to_string_lossy().to_string());
        }
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
            eprintln!(
                "held-out accuracy before training: {} ({}/{})",
                e["accuracy"], e["correct"], e["n"]
            );
        }
    }
    let pb = progress(cfg.max_steps as u64, cfg.algo.name());
    pb.set_position(tr.step as u64);
    while !tr.done() {
        let m = tr.step()?;
        pb.set_position(tr.step as u64);
        let f = |k: &str| m[k].as_f64().map_or("-".into(), |v| format!("{v:.3}"));
        pb.set_message(format!(
            "{} r {} acc {} rho {} {}s/step",
            cfg.algo.name(),
            f("reward_mean"),
            f("accuracy"),
            f("rho_mean"),
            f("seconds_step")
        ));
        tracing::info!("step {}: {}", tr.step, m);
    }
    pb.finish();
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
    #[arg(long)]
    model: Option<String>,
    /// Training pairs: a JSONL file, or gsm8k-train (GSM8K's training split, bundled with egi).
    #[arg(long)]
    data: Option<String>,
    #[arg(long)]
    out: PathBuf,
    /// TOML or JSON file with any of the settings (keys as in RUN/config.json); flags override.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    resume: bool,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long)]
    max_steps: Option<usize>,
    /// Examples per optimizer step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Response tokens beyond this are cut.
    #[arg(long)]
    max_len: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    warmup_steps: Option<usize>,
    /// all, attention or lora.
    #[arg(long)]
    trainable: Option<String>,
    #[arg(long)]
    lora_rank: Option<usize>,
    #[arg(long)]
    save_every: Option<usize>,
    #[arg(long)]
    keep_last: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Prompt template: boxed, plain, or a text containing {problem}.
    #[arg(long)]
    template: Option<String>,
}

pub fn sft(a: SftArgs) -> Result<()> {
    let _lock = crate::lock::lock_dir(&a.out)?;
    let saved = a.out.join("config.json");
    let file = a.config.clone().or(if a.resume && saved.is_file() {
        Some(saved)
    } else {
        None
    });
    let mut c: SftConfig = match file {
        Some(p) => egi_rl::config::read_config(&p)?,
        None => SftConfig::default(),
    };
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = &a.$f { c.$f = v.clone(); } )* };
    }
    set!(
        model,
        data,
        max_steps,
        batch_size,
        max_len,
        lr,
        warmup_steps,
        lora_rank,
        save_every,
        keep_last,
        seed,
        template
    );
    if a.limit.is_some() {
        c.limit = a.limit;
    }
    if let Some(t) = &a.trainable {
        c.trainable = parse::<Trainable>(t, "trainable", "all, attention or lora")?;
    }
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
