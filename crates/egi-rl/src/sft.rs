//! Supervised fine-tuning on prompt/response pairs: mean negative log-likelihood of the
//! response tokens (prompt tokens carry no loss), the same optimizer, checkpoints and metrics
//! as RL.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use egi_eval::data::DataSource;
use egi_model::{GenerationDefaults, Tokenizer, Transformer};
use serde_json::{json, Value};

use crate::checkpoint::{self, MetricsLog, TrainerState};
use crate::config::{Backward, TrainConfig, Trainable};
use crate::optim::Schedule;
use crate::policy::pack;
use crate::policy_state::Policy;
use crate::rl::stream_index;

crate::settings! {
    /// Every knob of `egi sft`: the config file's keys and, with the same names, its flags.
    /// The keys it shares with [`TrainConfig`] mean the same there (see [`SftConfig::as_train`]);
    /// the defaults are SFT's own.
    pub struct SftConfig, flags SftFlags {
        /// Shown in plots and reports (default: the run directory's name).
        name: Option<String> = None, flag String [];
        /// Model: GGUF file, HF directory, `default`, or hub id.
        model: String = "default".into(), flag String [];
        /// Training pairs: JSONL with {"prompt", "response"}, {"problem", "solution"} (`egi
        /// data arith --solutions`, MATH), or GSM8K-style {"question", "answer"} whose answer
        /// holds a worked solution ending in "#### N"; or a bundled set's name (gsm8k-train).
        data: String = String::new(), flag String [];
        /// Use the first N examples only.
        limit: Option<usize> = None, flag usize [value_name = "N"];
        /// Prompt template: boxed, plain, or a text containing {problem}.
        template: String = "boxed".into(), flag String [];
        /// Skip the chat template.
        raw: bool = false, flag bool [num_args = 0..=1, default_missing_value = "true"];
        /// Optimizer steps (default 200).
        max_steps: usize = 200, flag usize [value_name = "N"];
        /// Examples per optimizer step (default 8).
        batch_size: usize = 8, flag usize [value_name = "N"];
        /// Response tokens beyond this are cut (default 512).
        max_len: usize = 512, flag usize [value_name = "N"];
        /// Peak learning rate of AdamW (default 1e-5).
        lr: f64 = 1e-5, flag f64 [];
        /// Linear warm-up steps (default 10).
        warmup_steps: usize = 10, flag usize [value_name = "N"];
        /// Learning-rate schedule after warm-up (default cosine).
        schedule: Schedule = Schedule::Cosine, flag Schedule [value_enum];
        /// Cosine decays to lr * min_lr_ratio at the last step (default 0.1).
        min_lr_ratio: f64 = 0.1, flag f64 [];
        /// AdamW's decoupled weight decay (default 0).
        weight_decay: f64 = 0.0, flag f64 [];
        /// Global gradient-norm clip (default 1.0; 0 = off).
        max_grad_norm: f64 = 1.0, flag f64 [];
        /// Weights trained: all, attention (q/k/v/o only) or lora (default all).
        trainable: Trainable = Trainable::All, flag Trainable [value_enum];
        /// How gradients are computed (default fused).
        backward: Backward = Backward::Fused, flag Backward [value_enum];
        /// LoRA rank (default 8).
        lora_rank: usize = 8, flag usize [value_name = "R"];
        /// LoRA alpha (default 16; the update is scaled by alpha / rank).
        lora_alpha: f64 = 16.0, flag f64 [];
        /// Projections that get adapters (default q,k,v,o).
        lora_targets: Vec<String> = ["q", "k", "v", "o"].map(String::from).to_vec(),
            flag String [value_name = "LIST"] => crate::config::comma_list;
        /// Save a checkpoint every N steps, and at the end (default 50).
        save_every: usize = 50, flag usize [value_name = "N"];
        /// Checkpoints kept (default 0 = all).
        keep_last: usize = 0, flag usize [value_name = "N"];
        /// Seed of the data order (default 0).
        seed: u64 = 0, flag u64 [];
    }
}

impl SftConfig {
    /// The RL config carrying the shared optimizer / trainable settings.
    pub fn as_train(&self) -> TrainConfig {
        TrainConfig {
            lr: self.lr,
            warmup_steps: self.warmup_steps,
            schedule: self.schedule,
            min_lr_ratio: self.min_lr_ratio,
            weight_decay: self.weight_decay,
            max_grad_norm: self.max_grad_norm,
            trainable: self.trainable,
            backward: self.backward,
            lora_rank: self.lora_rank,
            lora_alpha: self.lora_alpha,
            lora_targets: self.lora_targets.clone(),
            seed: self.seed,
            ..TrainConfig::default()
        }
    }
}

/// A GSM8K worked solution as a response: calculator annotations <<...>> removed and the
/// "#### N" line turned into "The final answer is \boxed{N}." (what the boxed prompt asks for).
pub fn gsm8k_solution(answer: &str) -> Option<String> {
    let (body, final_ans) = answer.rsplit_once("####")?;
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find("<<") {
        out.push_str(&rest[..i]);
        match rest[i..].find(">>") {
            Some(j) => rest = &rest[i + j + 2..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    let ans = final_ans.trim().replace(',', "");
    Some(format!(
        "{}\nThe final answer is \\boxed{{{ans}}}.",
        out.trim_end()
    ))
}

/// (prompt, response) pairs of a JSONL data set: `prompt` and `response`, `problem` and
/// `solution` (`egi data arith --solutions`, MATH), or GSM8K's `question` and `answer` (its
/// `#### N` line boxed). Errors name the line.
pub fn read_pairs(src: &DataSource, limit: Option<usize>) -> Result<Vec<(String, String)>> {
    let text = src.text()?;
    let label = src.label();
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not valid JSON", label, i + 1))?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
        let pair = match (s("prompt"), s("response"), s("question"), s("answer")) {
            (Some(p), Some(r), _, _) => (p, r),
            _ if s("problem").is_some() && s("solution").is_some() => {
                (s("problem").unwrap_or_default(), s("solution").unwrap_or_default())
            }
            (_, _, Some(q), Some(a)) => match gsm8k_solution(&a) {
                Some(r) => (q, r),
                None => bail!(
                    "{}:{}: \"answer\" has no \"#### N\" final line; give \"prompt\" and \"response\" instead",
                    label,
                    i + 1
                ),
            },
            _ => bail!(
                "{}:{}: need \"prompt\" and \"response\", \"problem\" and \"solution\" (egi data arith --solutions, MATH) or GSM8K's \"question\" and \"answer\"",
                label,
                i + 1
            ),
        };
        out.push(pair);
    }
    if out.is_empty() {
        bail!("{}: no examples", label);
    }
    Ok(out)
}

/// Tokenized example: prompt ids and response ids (EOS appended).
pub struct Example {
    pub prompt: Vec<u32>,
    pub response: Vec<u32>,
}

pub fn encode_examples(
    pairs: &[(String, String)],
    tok: &Tokenizer,
    eos: Option<u32>,
    cfg: &SftConfig,
) -> Result<Vec<Example>> {
    pairs
        .iter()
        .map(|(p, r)| {
            let text = egi_eval::prompt::render(&cfg.template, p)?;
            let prompt = egi_model::text::encode_prompt(tok, &text, cfg.raw)?;
            let mut response = tok.encode(r, false)?;
            response.truncate(cfg.max_len.saturating_sub(1).max(1));
            response.extend(eos);
            Ok(Example { prompt, response })
        })
        .collect()
}

pub struct SftTrainer<'a> {
    pub cfg: SftConfig,
    pub policy: Policy,
    examples: Vec<Example>,
    tokenizer: Option<&'a Tokenizer>,
    generation: GenerationDefaults,
    run: PathBuf,
    pub step: usize,
    cursor: usize,
    metrics: MetricsLog,
}

impl<'a> SftTrainer<'a> {
    pub fn new(
        cfg: SftConfig,
        model: Transformer,
        tokenizer: Option<&'a Tokenizer>,
        generation: GenerationDefaults,
        examples: Vec<Example>,
        run: &Path,
        resume: bool,
    ) -> Result<Self> {
        if examples.is_empty() {
            bail!("no training examples");
        }
        if cfg.batch_size == 0 || cfg.max_steps == 0 {
            bail!("batch_size and max_steps must be at least 1");
        }
        std::fs::create_dir_all(run)?;
        let mut policy = Policy::new(model, &cfg.as_train())?;
        let (mut step, mut cursor, mut keep) = (0, 0, None);
        if resume {
            if let Some((s, dir)) = checkpoint::latest(run) {
                let st = checkpoint::read_state(&dir)?;
                policy.load(&dir)?;
                (step, cursor, keep) = (st.step, st.cursor, Some(s));
            }
        }
        crate::write_atomic(
            &run.join("config.json"),
            serde_json::to_string_pretty(&cfg)?.as_bytes(),
        )?;
        Ok(SftTrainer {
            metrics: MetricsLog::open(&run.join("metrics.jsonl"), keep)?,
            cfg,
            policy,
            examples,
            tokenizer,
            generation,
            run: run.to_path_buf(),
            step,
            cursor,
        })
    }

    pub fn done(&self) -> bool {
        self.step >= self.cfg.max_steps
    }

    fn example_at(&self, c: usize) -> usize {
        stream_index(self.cfg.seed, 0x5f7, self.examples.len(), c)
    }

    pub fn step(&mut self) -> Result<Value> {
        let t0 = Instant::now();
        let idx: Vec<usize> = (self.cursor..self.cursor + self.cfg.batch_size)
            .map(|c| self.example_at(c))
            .collect();
        self.cursor += self.cfg.batch_size;
        let n_tok: usize = idx.iter().map(|&i| self.examples[i].response.len()).sum();
        let mut acc: Vec<Option<Tensor>> = vec![None; self.policy.opt.vars().len()];
        let mut nll_sum = 0f64;
        for &i in &idx {
            let ex = &self.examples[i];
            let pk = pack(&ex.prompt, &[&ex.response]);
            let fwd = self.policy.forward(&pk, 256)?;
            // Token-level mean over the whole batch.
            let loss = (fwd.logp().sum_all()? * (-1.0 / n_tok as f64))?;
            let l: f32 = loss.to_scalar()?;
            if !l.is_finite() {
                bail!("step {}: the loss is {l}; stopping without an update (last good checkpoint: {}). Lower --lr.",
                    self.step + 1,
                    checkpoint::latest(&self.run).map(|(_, p)| p.display().to_string()).unwrap_or_else(|| "none".into()));
            }
            nll_sum += l as f64;
            self.policy.backward(fwd, &loss, &mut acc)?;
        }
        let lr = self.policy.opt.cfg.lr_at(self.step, self.cfg.max_steps);
        let gn = self.policy.opt.step(&acc, lr).map_err(|e| {
            anyhow::anyhow!(
                "step {}: {e}; stopping (lower --lr and resume with --resume)",
                self.step + 1
            )
        })?;
        self.step += 1;
        let secs = t0.elapsed().as_secs_f64();
        let m = json!({
            "step": self.step,
            "loss": nll_sum,
            "grad_norm": gn,
            "lr": lr,
            "tokens": n_tok,
            "tokens_per_s": n_tok as f64 / secs,
            "seconds_step": secs,
        });
        self.metrics.append(&m)?;
        if (self.cfg.save_every > 0 && self.step.is_multiple_of(self.cfg.save_every)) || self.done()
        {
            self.save()?;
        }
        Ok(m)
    }

    pub fn save(&mut self) -> Result<PathBuf> {
        let state = TrainerState {
            step: self.step,
            cursor: self.cursor,
            algo: "sft".into(),
            seed: self.cfg.seed,
        };
        let (tok, gen) = (self.tokenizer, self.generation.clone());
        let policy = &mut self.policy;
        checkpoint::save(&self.run, &state, self.cfg.keep_last, |dir| {
            policy.save(dir, tok, &gen)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_from_each_record_shape_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("d.jsonl");
        let arith = egi_eval::arith::generate(&egi_eval::arith::ArithOptions {
            n: 2,
            solutions: true,
            ..Default::default()
        })
        .unwrap();
        let text = format!(
            "{}{}\n{}\n",
            egi_eval::arith::to_jsonl(&arith),
            r#"{"prompt": "P", "response": "R", "problem": "x", "solution": "y"}"#,
            r#"{"question": "Q", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"}"#
        );
        std::fs::write(&f, text).unwrap();
        let src = DataSource::File(f.clone());
        let ps = read_pairs(&src, None).unwrap();
        assert_eq!(ps.len(), 4);
        assert_eq!(ps[0].0, arith[0].problem);
        assert_eq!(Some(&ps[0].1), arith[0].solution.as_ref());
        assert_eq!(ps[2], ("P".into(), "R".into()));
        assert_eq!(ps[3].1, "3 + 4 = 7\nThe final answer is \\boxed{7}.");
        assert_eq!(read_pairs(&src, Some(1)).unwrap().len(), 1);

        let plain = egi_eval::arith::generate(&egi_eval::arith::ArithOptions {
            n: 1,
            ..Default::default()
        })
        .unwrap();
        std::fs::write(&f, egi_eval::arith::to_jsonl(&plain)).unwrap();
        let e = format!("{:#}", read_pairs(&src, None).unwrap_err());
        assert!(e.contains("d.jsonl:1") && e.contains("--solutions"), "{e}");
    }
}
