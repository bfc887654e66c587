//! The training configuration: one struct, read from TOML or JSON, overridden by flags,
//! printed at start and saved as RUN/config.json.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use egi_probe::{StepMode, Target};

use crate::loss::Base;
use crate::optim::{OptimConfig, Schedule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algo {
    /// CorR-PO: the base algorithm with r = R_acc + lambda * -(1 + rho_step).
    CorrPo,
    Grpo,
    DrGrpo,
    Dapo,
    Gspo,
}

impl Algo {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "corr-po" | "corrpo" => Algo::CorrPo,
            "grpo" => Algo::Grpo,
            "dr-grpo" | "drgrpo" => Algo::DrGrpo,
            "dapo" => Algo::Dapo,
            "gspo" => Algo::Gspo,
            _ => bail!("unknown algorithm `{s}`: use corr-po, grpo, dr-grpo, dapo or gspo"),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backward {
    /// egi-model's hand-written training backward (all weights or attention only).
    #[default]
    Fused,
    /// candle's autograd (always used for LoRA).
    Autograd,
}

/// Every knob of `egi train` (and the shared part of `egi sft`). Field names are the config
/// file's keys; unknown keys are an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Shown in plots and reports (default: the run directory's name).
    pub name: Option<String>,
    pub algo: Algo,
    /// CorR-PO's base algorithm (ignored by the others, which are their own base).
    pub base: Base,
    pub model: String,
    /// A data file (JSONL / JSON with problem + answer), a bundled set's name (gsm8k, math500,
    /// ...; `egi data list`) or hf:OWNER/REPO/FILE.
    pub data: String,
    /// Read named sets from this folder instead of the copies bundled with egi.
    pub data_dir: Option<String>,
    /// Use the first N problems only.
    pub limit: Option<usize>,
    /// Prompt template: boxed, plain, or a text containing {problem}.
    pub template: String,
    /// Skip the chat template.
    pub raw: bool,

    pub max_steps: usize,
    pub group_size: usize,
    pub batch_prompts: usize,
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    /// Passes over each rollout batch (each pass takes `mini_batches` optimizer steps).
    pub ppo_epochs: usize,
    /// Optimizer steps per pass: the batch split into this many mini-batches, pi_old frozen
    /// at sampling (default per algorithm from its paper: [`Base::default_mini_batches`];
    /// at most the number of micro-batches).
    pub mini_batches: Option<usize>,
    /// Responses packed into one forward/backward (bounds memory).
    pub micro_batch: usize,
    /// Clip range; defaults per algorithm (GRPO 0.2/0.2, DAPO 0.2/0.28, GSPO 3e-4/4e-4).
    pub eps_low: Option<f64>,
    pub eps_high: Option<f64>,
    /// k3 KL weight to the frozen starting model (0 = none, no reference model kept).
    pub beta: f64,
    /// CorR-PO's weight of R_corr.
    pub lambda: f64,
    /// Weight of the format reward (0 = off).
    pub format_weight: f64,
    /// DAPO's soft overlong penalty (default: on for DAPO only).
    pub overlong_penalty: Option<bool>,
    /// Its buffer L_c in tokens (default: max_new_tokens / 4).
    pub overlong_buffer: Option<usize>,
    /// Drop all-equal groups and sample more (default: on for DAPO only).
    pub dynamic_sampling: Option<bool>,
    /// Rounds of extra sampling per step when groups are dropped.
    pub max_sampling_rounds: usize,

    pub lr: f64,
    pub warmup_steps: usize,
    pub schedule: Schedule,
    pub min_lr_ratio: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,

    pub trainable: Trainable,
    /// "fused" (default) or "autograd": see [`Backward`].
    pub backward: Backward,
    pub lora_rank: usize,
    pub lora_alpha: f64,
    /// Projections that get adapters (q, k, v, o, gate, up, down).
    pub lora_targets: Vec<String>,

    pub save_every: usize,
    pub keep_last: usize,
    pub seed: u64,

    /// Greedy accuracy on held-out problems every N steps (0 = never); `eval_data` as `data`.
    pub eval_every: usize,
    pub eval_data: Option<String>,
    pub eval_limit: usize,

    /// Fingerprint used by CorR-PO's reward (docs/method.md section 2 options).
    pub fp_step_delim: String,
    /// How a step's influence is obtained: `mean` (METHOD's definition, one backward per
    /// token), `mean-logit` or `sum-logits` (one backward per step). The default and why:
    /// docs/method.md, "Step influence".
    pub fp_step_mode: StepMode,
    /// Layers measured (None = all).
    pub fp_layers: Option<Vec<usize>>,
    pub fp_target: Target,
    /// CorR-PO: take the fingerprint's activations from the update's own forward pass over
    /// each packed micro-batch (recorded once, before the rewards, and kept until the
    /// update) instead of a second forward per response. Costs the memory of every
    /// micro-batch's activations at once; false records them one at a time. Applies with
    /// the hand-written backward (not LoRA).
    pub fp_reuse_forward: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            name: None,
            algo: Algo::Grpo,
            base: Base::Grpo,
            model: "default".into(),
            data: String::new(),
            data_dir: None,
            limit: None,
            template: "boxed".into(),
            raw: false,
            max_steps: 100,
            group_size: 8,
            batch_prompts: 4,
            max_new_tokens: 256,
            temperature: 1.0,
            top_p: 1.0,
            ppo_epochs: 1,
            mini_batches: None,
            micro_batch: 4,
            eps_low: None,
            eps_high: None,
            beta: 0.0,
            lambda: 0.1,
            format_weight: 0.0,
            overlong_penalty: None,
            overlong_buffer: None,
            dynamic_sampling: None,
            max_sampling_rounds: 3,
            lr: 1e-6,
            warmup_steps: 0,
            schedule: Schedule::Constant,
            min_lr_ratio: 0.0,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            trainable: Trainable::All,
            backward: Backward::Fused,
            lora_rank: 8,
            lora_alpha: 16.0,
            lora_targets: ["q", "k", "v", "o"].map(String::from).to_vec(),
            save_every: 50,
            keep_last: 3,
            seed: 0,
            eval_every: 0,
            eval_data: None,
            eval_limit: 50,
            fp_step_delim: "\n".into(),
            fp_step_mode: StepMode::MeanLogit,
            fp_layers: None,
            fp_reuse_forward: true,
            fp_target: Target::Logit,
        }
    }
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
    pub fn use_overlong(&self) -> bool {
        self.overlong_penalty
            .unwrap_or(self.base_algo() == Base::Dapo)
    }
    pub fn use_dynamic_sampling(&self) -> bool {
        self.dynamic_sampling
            .unwrap_or(self.base_algo() == Base::Dapo)
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
