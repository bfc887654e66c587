//! The training configuration: one struct, read from TOML or JSON, overridden by flags,
//! printed at start and saved as RUN/config.json.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use egi_probe::{StepMode, Target};

use crate::loss::Base;
use crate::optim::{OptimConfig, Schedule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Algo {
    /// CorR-PO: the base algorithm with r = R_acc + lambda * -(1 + rho_step).
    #[value(alias = "corrpo")]
    CorrPo,
    Grpo,
    #[value(alias = "drgrpo")]
    DrGrpo,
    Dapo,
    Gspo,
}

impl Algo {
    pub fn parse(s: &str) -> Result<Self> {
        <Algo as clap::ValueEnum>::from_str(s, false).map_err(|_| {
            anyhow::anyhow!("unknown algorithm `{s}`: use corr-po, grpo, dr-grpo, dapo or gspo")
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Algo::CorrPo => "corr-po",
            Algo::Grpo => "grpo",
            Algo::DrGrpo => "dr-grpo",
            Algo::Dapo => "dapo",
            Algo::Gspo => "gspo",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Trainable {
    /// Every weight.
    All,
    /// q, k, v, o projections of every layer (and their biases).
    Attention,
    /// Low-rank adapters on `lora_targets`; the base weights stay frozen.
    Lora,
}

/// How gradients are computed. Both give the same gradients (tests check it); "autograd"
/// (candle's) is kept as the reference and the benchmark's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backward {
    /// egi-model's hand-written training backward (all weights or attention only).
    #[default]
    Fused,
    /// candle's autograd (always used for LoRA).
    Autograd,
}

crate::settings! {
    /// Every knob of `egi train`: the config file's keys (RUN/config.json) and, with the same
    /// names, `egi train`'s flags (`--max-steps` sets `max_steps`).
    pub struct TrainConfig, flags TrainFlags {
        /// Shown in plots and reports (default: the run directory's name).
        name: Option<String> = None, flag String [];
        /// The algorithm (default grpo).
        algo: Algo = Algo::Grpo, flag Algo [value_enum];
        /// CorR-PO's base algorithm (the others are their own base).
        base: Base = Base::Grpo, flag Base [value_enum];
        /// Model: GGUF file, HF directory, `default`, or hub id.
        model: String = "default".into(), flag String [];
        /// Training problems: a JSONL/JSON file with problem + answer (what `egi eval` and
        /// `egi data arith` use), a bundled set's name (gsm8k, math500, ...; `egi data list`)
        /// or hf:OWNER/REPO/FILE.
        data: String = String::new(), flag String [];
        /// Read named sets from this folder instead of the copies bundled with egi.
        data_dir: Option<String> = None, flag String [];
        /// Use the first N problems only.
        limit: Option<usize> = None, flag usize [value_name = "N"];
        /// Prompt template: boxed, plain, or a text containing {problem}.
        template: String = "boxed".into(), flag String [];
        /// Skip the chat template.
        raw: bool = false, flag bool [num_args = 0..=1, default_missing_value = "true"];

        /// Optimizer steps, one rollout batch each (default 100).
        max_steps: usize = 100, flag usize [value_name = "N"];
        /// Responses sampled per prompt (G; default 8).
        group_size: usize = 8, flag usize [value_name = "G"];
        /// Prompts per step (default 4).
        batch_prompts: usize = 4, flag usize [value_name = "N"];
        /// Response length limit (default 256; also DAPO's L_max).
        max_new_tokens: usize = 256, flag usize [value_name = "N"];
        /// Rollout sampling temperature (default 1.0).
        temperature: f64 = 1.0, flag f64 [];
        /// Rollout nucleus sampling (default 1.0 = off).
        top_p: f64 = 1.0, flag f64 [];
        /// Passes over each rollout batch (PPO epochs; each pass takes `mini_batches`
        /// optimizer steps; default 1).
        ppo_epochs: usize = 1, flag usize [value_name = "N"];
        /// Optimizer steps per pass: the rollout batch split into M mini-batches, pi_old
        /// frozen at sampling, so that from the second step on the ratio moves and clipping
        /// acts (default from each paper: GRPO and Dr.GRPO 1, DAPO 16, GSPO 4; at most the
        /// number of micro-batches).
        mini_batches: Option<usize> = None, flag usize [value_name = "M"];
        /// Responses packed into one forward/backward (bounds memory; default 4).
        micro_batch: usize = 4, flag usize [value_name = "N"];
        /// Lower clip range (default per algorithm: GRPO 0.2, DAPO 0.2, GSPO 3e-4).
        eps_low: Option<f64> = None, flag f64 [];
        /// Upper clip range (default per algorithm: GRPO 0.2, DAPO 0.28, GSPO 4e-4).
        eps_high: Option<f64> = None, flag f64 [];
        /// k3 KL weight to the frozen starting model (default 0: no reference model kept).
        beta: f64 = 0.0, flag f64 [];
        /// CorR-PO's weight of R_corr = -(1 + rho) (default 0.1).
        lambda: f64 = 0.1, flag f64 [];
        /// Weight of the format reward (answer given explicitly; default 0 = off).
        format_weight: f64 = 0.0, flag f64 [];
        /// DAPO's soft overlong penalty (default: on for DAPO only).
        overlong_penalty: Option<bool> = None, flag bool [value_name = "BOOL"];
        /// Its buffer L_c in tokens (default: max_new_tokens / 4).
        overlong_buffer: Option<usize> = None, flag usize [value_name = "N"];
        /// Drop all-equal groups and sample more (default: on for DAPO only).
        dynamic_sampling: Option<bool> = None, flag bool [value_name = "BOOL"];
        /// Rounds of extra sampling per step when groups are dropped (default 3).
        max_sampling_rounds: usize = 3, flag usize [value_name = "N"];

        /// Peak learning rate of AdamW (default 1e-6).
        lr: f64 = 1e-6, flag f64 [];
        /// Linear warm-up steps (default 0).
        warmup_steps: usize = 0, flag usize [value_name = "N"];
        /// Learning-rate schedule after warm-up (default constant).
        schedule: Schedule = Schedule::Constant, flag Schedule [value_enum];
        /// Cosine decays to lr * min_lr_ratio at the last step (default 0).
        min_lr_ratio: f64 = 0.0, flag f64 [];
        /// AdamW's decoupled weight decay (default 0).
        weight_decay: f64 = 0.0, flag f64 [];
        /// Global gradient-norm clip (default 1.0; 0 = off).
        max_grad_norm: f64 = 1.0, flag f64 [];
        /// AdamW's beta1 (default 0.9).
        adam_beta1: f64 = 0.9, flag f64 [];
        /// AdamW's beta2 (default 0.999).
        adam_beta2: f64 = 0.999, flag f64 [];

        /// Weights trained: all, attention (q/k/v/o only) or lora (default all).
        trainable: Trainable = Trainable::All, flag Trainable [value_enum];
        /// How gradients are computed (default fused): see [`Backward`].
        backward: Backward = Backward::Fused, flag Backward [value_enum];
        /// LoRA rank (default 8).
        lora_rank: usize = 8, flag usize [value_name = "R"];
        /// LoRA alpha (default 16; the update is scaled by alpha / rank).
        lora_alpha: f64 = 16.0, flag f64 [];
        /// Projections that get adapters, comma-separated among q, k, v, o, gate, up, down
        /// (default q,k,v,o).
        lora_targets: Vec<String> = ["q", "k", "v", "o"].map(String::from).to_vec(),
            flag String [value_name = "LIST"] => comma_list;

        /// Save a checkpoint every N steps, and at the end (default 50). The newest holds the
        /// weights and the optimizer's moments (3x the weights: 1.6 GB for the 135M model in
        /// f32), the older ones the weights only (0.5 GB); a larger N saves disk and time.
        save_every: usize = 50, flag usize [value_name = "N"];
        /// Checkpoints kept (default 3; 0 = all): at most 1 full and N-1 weights-only ones on
        /// disk; 1 keeps disk use to one full checkpoint.
        keep_last: usize = 3, flag usize [value_name = "N"];
        /// Seed of the data order and of every rollout (default 0).
        seed: u64 = 0, flag u64 [];

        /// Greedy accuracy on held-out problems every N steps and at the end (default 0 =
        /// only with --eval-data, at the end).
        eval_every: usize = 0, flag usize [value_name = "N"];
        /// Held-out problems for that accuracy (file or benchmark name, as `data`).
        eval_data: Option<String> = None, flag String [];
        /// Held-out problems evaluated (default 50).
        eval_limit: usize = 50, flag usize [value_name = "N"];

        /// Measure rho_step of every rollout (logged as rho_mean) with any algorithm, at the
        /// cost of CorR-PO's fingerprint; it enters the reward only with CorR-PO. Lets GRPO's
        /// rollouts be watched the way CorR-PO's are. Default false.
        measure_rho: bool = false, flag bool [value_name = "BOOL"];
        /// CorR-PO: step delimiter of the fingerprint (default "\n"; escapes \n and \t
        /// are understood).
        fp_step_delim: String = "\n".into(), flag String [] => unescape;
        /// CorR-PO: how a step's influence is obtained: `mean` (METHOD's definition, one
        /// backward per token), `mean-logit` or `sum-logits` (one backward per step). The
        /// default (mean-logit) and why: docs/method.md, "Step influence".
        fp_step_mode: StepMode = StepMode::MeanLogit, flag StepMode [value_enum];
        /// CorR-PO: layers whose q/k/v/o enter rho (e.g. 20-29; default all). The
        /// fingerprint's backward stops at the lowest one, so the top layers alone cost a
        /// fraction of all.
        fp_layers: Option<Vec<usize>> = None, flag String [value_name = "LAYERS"] => layer_list;
        /// CorR-PO: the scalar whose gradient is measured (default logit).
        fp_target: Target = Target::Logit, flag Target [value_enum];
        /// CorR-PO: take the fingerprint's activations from the update's own forward pass over
        /// each packed micro-batch (recorded once, before the rewards, and kept until the
        /// update) instead of a second forward per response. Costs the memory of every
        /// micro-batch's activations at once; false records them one at a time. Applies with
        /// the hand-written backward (not LoRA). Default true.
        fp_reuse_forward: bool = true, flag bool [value_name = "BOOL"];
    }
}

/// "a, b,c" -> ["a", "b", "c"].
pub(crate) fn comma_list(s: &str) -> Result<Vec<String>> {
    Ok(s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect())
}

/// A step delimiter as typed on a command line: \n and \t are a newline and a tab.
fn unescape(s: &str) -> Result<String> {
    Ok(s.replace("\\n", "\n").replace("\\t", "\t"))
}

/// `all` or a list of layers and ranges (checked against the model when it is loaded).
fn layer_list(s: &str) -> Result<Option<Vec<usize>>> {
    egi_probe::fingerprint::parse_layers(s, usize::MAX).context("--fp-layers")
}

impl TrainConfig {
    /// Read a TOML (`.toml`) or JSON file; missing keys take their defaults.
    pub fn from_file(path: &Path) -> Result<Self> {
        read_config(path)
    }

    /// The algorithm whose surrogate and normaliser are used.
    pub fn base_algo(&self) -> Base {
        match self.algo {
            Algo::CorrPo => self.base,
            Algo::Grpo => Base::Grpo,
            Algo::DrGrpo => Base::DrGrpo,
            Algo::Dapo => Base::Dapo,
            Algo::Gspo => Base::Gspo,
        }
    }
    pub fn clip(&self) -> (f64, f64) {
        let (l, h) = self.base_algo().default_clip();
        (self.eps_low.unwrap_or(l), self.eps_high.unwrap_or(h))
    }
    /// Optimizer steps per pass over the rollout batch.
    pub fn mini_batches(&self) -> usize {
        self.mini_batches
            .unwrap_or(self.base_algo().default_mini_batches())
    }
    /// Whether the rollouts' rho_step is measured: always with CorR-PO, else on request.
    pub fn measures_rho(&self) -> bool {
        self.algo == Algo::CorrPo || self.measure_rho
    }
    pub fn use_overlong(&self) -> bool {
        self.overlong_penalty
            .unwrap_or(self.base_algo().default_overlong_penalty())
    }
    pub fn use_dynamic_sampling(&self) -> bool {
        self.dynamic_sampling
            .unwrap_or(self.base_algo().default_dynamic_sampling())
    }
    pub fn overlong_buffer(&self) -> usize {
        self.overlong_buffer
            .unwrap_or((self.max_new_tokens / 4).max(1))
    }
    pub fn optim(&self) -> OptimConfig {
        OptimConfig {
            lr: self.lr,
            beta1: self.adam_beta1,
            beta2: self.adam_beta2,
            eps: 1e-8,
            weight_decay: self.weight_decay,
            warmup_steps: self.warmup_steps,
            schedule: self.schedule,
            min_lr_ratio: self.min_lr_ratio,
            max_grad_norm: self.max_grad_norm,
        }
    }

    /// Reject settings that cannot work, naming the key and the fix.
    pub fn validate(&self) -> Result<()> {
        let pos = |v: usize, k: &str| -> Result<()> {
            if v == 0 {
                bail!("{k} must be at least 1");
            }
            Ok(())
        };
        pos(self.max_steps, "max_steps (--max-steps)")?;
        pos(self.batch_prompts, "batch_prompts (--batch-prompts)")?;
        pos(self.max_new_tokens, "max_new_tokens (--max-new-tokens)")?;
        pos(self.ppo_epochs, "ppo_epochs")?;
        if self.mini_batches == Some(0) {
            bail!("mini_batches (--mini-batches) must be at least 1");
        }
        pos(self.micro_batch, "micro_batch")?;
        if self.group_size < 2 {
            bail!("group_size (--group-size) must be at least 2: advantages compare responses within a group");
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            bail!(
                "lr (--lr) must be a finite non-negative number, got {}",
                self.lr
            );
        }
        if self.temperature.is_nan() || self.temperature <= 0.0 {
            bail!(
                "temperature must be > 0 for RL sampling (got {})",
                self.temperature
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail!("top_p must be in (0, 1], got {}", self.top_p);
        }
        if self.data.is_empty() {
            bail!("no training data: pass --data FILE|BENCH (or `data = ...` in the config)");
        }
        if self.algo == Algo::CorrPo && !(self.lambda.is_finite()) {
            bail!("lambda (--lambda) must be finite");
        }
        if self.trainable == Trainable::Lora && self.lora_rank == 0 {
            bail!("lora_rank must be at least 1");
        }
        Ok(())
    }
}

/// A config struct from a TOML file, or JSON when the name ends in `.json`; the error names
/// the file and the offending key.
pub fn read_config<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the config file", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid egi config (JSON)", path.display()))
    } else {
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a valid egi config (TOML): {}",
                path.display(),
                e.to_string().replace('\n', " ")
            )
        })
    }
}
