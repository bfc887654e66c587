//! The RL loop: rollouts -> rewards (verifier, format, overlong, fingerprint) -> group
//! advantages -> clipped surrogate -> AdamW. One call of [`Trainer::step`] is one step.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use egi_generate::{generate_ids, Completion, FinishReason, Request, SamplingParams};
use egi_model::{GenerationDefaults, Tokenizer, Transformer};
use egi_probe::ProbeOptions;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::advantage::{group_advantages, informative};
use crate::checkpoint::{self, MetricsLog, TrainerState};
use crate::config::{Algo, TrainConfig};
use crate::loss::{policy_loss, LossConfig, LossStats, Normalizer, TokenBatch};
use crate::metrics::{Phases, StepMetrics};
use crate::policy::{pack, token_logprobs, Packed};
use crate::policy_state::{Forward, Policy};
use crate::reward::{overlong_penalty, Reward, RewardWeights};
use crate::task::Task;

/// Vocabulary projection chunk (rows at a time) in the loss forward.
const LOGIT_CHUNK: usize = 1024;

/// `n` micro-batches split into `m` (at most `n`, at least 1) contiguous mini-batches of
/// near-equal size.
fn mini_batch_ranges(n: usize, m: usize) -> Vec<std::ops::Range<usize>> {
    let m = m.clamp(1, n.max(1));
    (0..m).map(|j| j * n / m..(j + 1) * n / m).collect()
}

/// One prompt's rollouts.
pub(crate) struct Group {
    pub(crate) problem: usize,
    pub(crate) cursor: usize,
    pub(crate) completions: Vec<Completion>,
    pub(crate) rewards: Vec<Reward>,
}

/// A step's rollouts: every sampled group, and the ones kept for the update (all, unless
/// dynamic sampling dropped some).
pub(crate) struct Batch {
    pub(crate) all: Vec<Group>,
    pub(crate) kept: Vec<usize>,
    pub(crate) rounds: usize,
}

/// What the update reports: loss statistics of the first epoch, the policy's entropy,
/// the last gradient norm, the learning rate and the time taken.
pub(crate) struct Update {
    pub(crate) stats: LossStats,
    pub(crate) ent_sum: f64,
    pub(crate) ent_n: usize,
    pub(crate) grad_norm: f64,
    pub(crate) lr: f64,
    pub(crate) seconds: f64,
}

pub struct Trainer<'a> {
    pub cfg: TrainConfig,
    pub policy: Policy,
    task: &'a dyn Task,
    eval_task: Option<&'a dyn Task>,
    tokenizer: Option<&'a Tokenizer>,
    generation: GenerationDefaults,
    reference: Option<Transformer>,
    run: PathBuf,
    pub step: usize,
    cursor: usize,
    metrics: MetricsLog,
    rollouts: MetricsLog,
    evals: MetricsLog,
    /// The latest held-out evaluation of this process (eval.jsonl's last line).
    pub last_eval: Option<Value>,
    /// CorR-PO with `fp_reuse_forward`: the forward of each micro-batch, recorded for the
    /// fingerprint before the rewards and used by the update's first epoch; keyed by
    /// (group cursor, first response).
    recorded: std::collections::HashMap<(usize, usize), crate::policy_state::Forward>,
}

/// A well-mixed 64-bit seed from its parts (splitmix64), so every rollout has its own stream
/// that depends only on the run seed and the example's place in the data stream.
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed
        .wrapping_add(a.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(b.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The example at position `c` of an endless data stream over `n` examples: each pass over
/// the data is a fresh shuffle seeded by (seed, salt, pass), so a position alone says which
/// example comes next (that is what makes resuming exact).
pub fn stream_index(seed: u64, salt: u64, n: usize, c: usize) -> usize {
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
        seed,
        (c / n) as u64,
        salt,
    )));
    perm[c % n]
}

impl<'a> Trainer<'a> {
    /// Set up a run in `run` (fresh, or resumed from its latest checkpoint).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: TrainConfig,
        model: Transformer,
        tokenizer: Option<&'a Tokenizer>,
        generation: GenerationDefaults,
        task: &'a dyn Task,
        eval_task: Option<&'a dyn Task>,
        run: &Path,
        resume: bool,
    ) -> Result<Self> {
        cfg.validate()?;
        if task.is_empty() {
            bail!("no training problems");
        }
        std::fs::create_dir_all(run)
            .with_context(|| format!("{}: cannot create", run.display()))?;
        let reference = if cfg.beta > 0.0 {
            Some(model.frozen_copy()?)
        } else {
            None
        };
        if cfg.measures_rho() {
            // Bad fingerprint options fail now, not at the first step.
            Self::probe_options_of(&cfg)?.matrices(model.cfg.num_layers)?;
        }
        let mut policy = Policy::new(model, &cfg)?;
        let (mut step, mut cursor, mut keep) = (0, 0, None);
        if resume {
            if let Some((s, dir)) = checkpoint::latest(run) {
                let st = checkpoint::read_state(&dir)?;
                policy.load(&dir)?;
                step = st.step;
                cursor = st.cursor;
                keep = Some(s);
                tracing::info!("resuming from {} (step {s})", dir.display());
            } else {
                tracing::info!(
                    "--resume: no checkpoint in {}, starting fresh",
                    run.display()
                );
            }
        }
        let write_config = run.join("config.json");
        crate::write_atomic(
            &write_config,
            serde_json::to_string_pretty(&cfg)?.as_bytes(),
        )?;
        Ok(Trainer {
            metrics: MetricsLog::open(&run.join("metrics.jsonl"), keep)?,
            rollouts: MetricsLog::open(&run.join("rollouts.jsonl"), keep)?,
            evals: MetricsLog::open(&run.join("eval.jsonl"), keep)?,
            last_eval: None,
            recorded: Default::default(),
            cfg,
            policy,
            task,
            eval_task,
            tokenizer,
            generation,
            reference,
            run: run.to_path_buf(),
            step,
            cursor,
        })
    }

    pub fn done(&self) -> bool {
        self.step >= self.cfg.max_steps
    }

    /// Whether the next [`Trainer::step`] ends with a held-out evaluation (every
    /// `eval_every` steps and after the last one, when there is held-out data).
    pub fn evaluates_after_next_step(&self) -> bool {
        let next = self.step + 1;
        self.eval_task.is_some()
            && ((self.cfg.eval_every > 0 && next.is_multiple_of(self.cfg.eval_every))
                || next >= self.cfg.max_steps)
    }

    fn problem_at(&self, c: usize) -> usize {
        stream_index(self.cfg.seed, 0x5eed, self.task.len(), c)
    }

    fn probe_options(&self) -> Result<ProbeOptions> {
        Self::probe_options_of(&self.cfg)
    }

    fn probe_options_of(cfg: &TrainConfig) -> Result<ProbeOptions> {
        Ok(ProbeOptions {
            target: cfg.fp_target,
            step_mode: cfg.fp_step_mode,
            layers: cfg.fp_layers.clone(),
            step_delim: cfg.fp_step_delim.clone(),
            ..ProbeOptions::default()
        })
    }

    /// Sample `n` prompts' groups and score them.
    fn rollout(&mut self, n: usize, secs: &mut Phases) -> Result<Vec<Group>> {
        let cfg = &self.cfg;
        let g = cfg.group_size;
        let t0 = Instant::now();
        let cursors: Vec<usize> = (self.cursor..self.cursor + n).collect();
        self.cursor += n;
        let problems: Vec<usize> = cursors.iter().map(|&c| self.problem_at(c)).collect();
        let mut reqs = vec![];
        for (&c, &p) in cursors.iter().zip(&problems) {
            for k in 0..g {
                reqs.push(Request {
                    prompt_ids: self.task.prompt_ids(p).to_vec(),
                    params: SamplingParams {
                        temperature: cfg.temperature,
                        top_p: cfg.top_p,
                        top_k: 0,
                        max_new_tokens: cfg.max_new_tokens,
                        stop: vec![],
                        seed: mix(cfg.seed, c as u64, k as u64 + 1),
                    },
                });
            }
        }
        let view = self.policy.inference_model()?;
        let task = self.task;
        let comps = generate_ids(
            &view,
            &|ids| task.decode(ids),
            task.eos_ids(),
            &reqs,
            &mut |_| {},
        )?;
        secs.rollout += t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let weights = RewardWeights {
            format: cfg.format_weight,
            lambda: cfg.lambda,
        };
        let mut rewards: Vec<Reward> = comps
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let chk = task.check(problems[i / g], &c.text);
                Reward {
                    acc: chk.correct as u8 as f64,
                    format: chk.formatted as u8 as f64,
                    overlong: if cfg.use_overlong() {
                        overlong_penalty(
                            c.token_ids.len(),
                            cfg.max_new_tokens,
                            cfg.overlong_buffer(),
                        )
                    } else {
                        0.0
                    },
                    ..Default::default()
                }
            })
            .collect();
        secs.reward += t1.elapsed().as_secs_f64();

        let corr = cfg.algo == Algo::CorrPo;
        if cfg.measures_rho() {
            // rho_step of each rollout under the current policy (no gradient flows through it).
            let t2 = Instant::now();
            let opts = self.probe_options()?;
            let cfg = &self.cfg;
            // The update's forward of each micro-batch, recorded now: the fingerprint reads
            // its activations, and the update's first epoch reuses it.
            let reuse = cfg.fp_reuse_forward && self.policy.records_pass();
            for (gi, (&c, &p)) in cursors.iter().zip(&problems).enumerate() {
                let prompt = task.prompt_ids(p);
                for s in (0..g).step_by(cfg.micro_batch) {
                    let mb = &comps[gi * g + s..gi * g + (s + cfg.micro_batch).min(g)];
                    let pk = pack(
                        prompt,
                        &mb.iter()
                            .map(|c| c.token_ids.as_slice())
                            .collect::<Vec<_>>(),
                    );
                    let fwd = if reuse && !pk.tgt.is_empty() {
                        Some(self.policy.forward(&pk, LOGIT_CHUNK)?)
                    } else {
                        None
                    };
                    for (k, comp) in mb.iter().enumerate() {
                        let body: &[u32] = if comp.finish_reason == FinishReason::Eos {
                            &comp.token_ids[..comp.token_ids.len() - 1]
                        } else {
                            &comp.token_ids
                        };
                        if body.is_empty() {
                            continue; // undefined rho: counted as 0
                        }
                        let ids: Vec<u32> = prompt.iter().chain(body).copied().collect();
                        let text = task.decode(body)?;
                        let starts = task.char_starts(body)?;
                        let n_prompt = prompt.len();
                        let fp = match fwd.as_ref().and_then(|f| f.body_pass()) {
                            Some(pass) => {
                                // This response's rows in the packed row: the prompt, then
                                // its block (which holds all but its last token).
                                let start = n_prompt + pk.blocks[..k].iter().sum::<usize>();
                                let rows: Vec<u32> = (0..n_prompt)
                                    .chain(start..start + pk.blocks[k].min(body.len()))
                                    .map(|r| r as u32)
                                    .collect();
                                let own = pass.select_rows(&view, &rows)?;
                                egi_probe::fingerprint_pass(
                                    &view, &own, &ids, n_prompt, &starts, &text, &opts,
                                )?
                            }
                            None => egi_probe::fingerprint(
                                &view, &ids, n_prompt, &starts, &text, &opts,
                            )?,
                        };
                        secs.fingerprint_flops += fp.backward_flops;
                        rewards[gi * g + s + k].rho = fp.rho_step;
                    }
                    if let Some(f) = fwd {
                        self.recorded.insert((c, s), f);
                    }
                }
            }
            secs.fingerprint += t2.elapsed().as_secs_f64();
        }
        for r in rewards.iter_mut() {
            *r = std::mem::take(r).finish(&weights, corr);
        }
        let mut out = vec![];
        let mut it_c = comps.into_iter();
        let mut it_r = rewards.into_iter();
        for (&c, &p) in cursors.iter().zip(&problems) {
            out.push(Group {
                problem: p,
                cursor: c,
                completions: it_c.by_ref().take(g).collect(),
                rewards: it_r.by_ref().take(g).collect(),
            });
        }
        Ok(out)
    }

    /// One training step. Returns its metrics (also appended to RUN/metrics.jsonl).
    /// One RL step: rollouts with their rewards -> group advantages -> the policy update ->
    /// metrics and logs. Returns the step's metrics (the line appended to metrics.jsonl).
    pub fn step(&mut self) -> Result<Value> {
        let t_step = Instant::now();
        let mut secs = Phases::default();
        let batch = self.sample_batch(&mut secs)?;
        let t_adv = Instant::now();
        let adv = self.advantages(&batch);
        secs.reward += t_adv.elapsed().as_secs_f64();
        let update = self.update(&batch, &adv)?;
        self.step += 1;
        let m = StepMetrics::new(
            self.step,
            &self.cfg,
            &batch,
            &update,
            secs,
            t_step.elapsed().as_secs_f64(),
        );
        self.log(&m, &batch)?;
        Ok(serde_json::to_value(&m)?)
    }

    /// Rollouts of `batch_prompts` prompts with their rewards. DAPO's dynamic sampling keeps
    /// only groups whose accuracies differ and samples again (up to `max_sampling_rounds`).
    fn sample_batch(&mut self, secs: &mut Phases) -> Result<Batch> {
        let cfg = self.cfg.clone();
        let mut b = Batch {
            all: vec![],
            kept: vec![],
            rounds: 0,
        };
        for round in 0..cfg.max_sampling_rounds.max(1) {
            b.rounds = round + 1;
            let need = cfg.batch_prompts - b.kept.len();
            for grp in self.rollout(need, secs)? {
                let acc: Vec<f64> = grp.rewards.iter().map(|r| r.acc).collect();
                if !cfg.use_dynamic_sampling() || informative(&acc) {
                    b.kept.push(b.all.len());
                }
                b.all.push(grp);
            }
            if !cfg.use_dynamic_sampling()
                || b.kept.len() >= cfg.batch_prompts
                || round + 1 == cfg.max_sampling_rounds
            {
                break;
            }
        }
        Ok(b)
    }

    /// Group advantages of the kept groups, scaled as the base algorithm says.
    fn advantages(&self, b: &Batch) -> Vec<Vec<f64>> {
        let scale = self.cfg.base_algo().advantage_scale();
        b.kept
            .iter()
            .map(|&i| {
                let r: Vec<f64> = b.all[i].rewards.iter().map(|r| r.total).collect();
                group_advantages(&r, self.cfg.group_size, scale)
            })
            .collect()
    }

    /// The policy update: each of `ppo_epochs` epochs takes one optimizer step per
    /// mini-batch (a run of micro-batches whose gradients are accumulated); pi_old is the
    /// policy that sampled.
    fn update(&mut self, b: &Batch, adv: &[Vec<f64>]) -> Result<Update> {
        let t_up = Instant::now();
        let cfg = self.cfg.clone();
        let (all, kept) = (&b.all, &b.kept);
        let (eps_low, eps_high) = cfg.clip();
        let lcfg = LossConfig {
            base: cfg.base_algo(),
            eps_low,
            eps_high,
            beta: cfg.beta,
        };
        let lr = self.policy.opt.cfg.lr_at(self.step, cfg.max_steps);
        let any_signal = cfg.beta > 0.0 || adv.iter().flatten().any(|&a| a != 0.0);
        let mut stats = LossStats::default();
        let (mut ent_sum, mut ent_n) = (0f64, 0usize);
        let mut grad_norm = 0f64;
        // Micro-batches: (kept-group index, first response, count).
        let mut mbs = vec![];
        for k in 0..kept.len() {
            for s in (0..cfg.group_size).step_by(cfg.micro_batch) {
                mbs.push((k, s, cfg.micro_batch.min(cfg.group_size - s)));
            }
        }
        let minis = mini_batch_ranges(mbs.len(), cfg.mini_batches());
        // Each mini-batch's loss is normalised over its own responses and tokens (with one
        // mini-batch: the whole rollout batch).
        let norms: Vec<Normalizer> = minis
            .iter()
            .map(|r| Normalizer {
                n_seq: mbs[r.clone()].iter().map(|m| m.2).sum::<usize>().max(1),
                n_tok: mbs[r.clone()]
                    .iter()
                    .map(|&(k, s, n)| {
                        all[kept[k]].completions[s..s + n]
                            .iter()
                            .map(|c| c.token_ids.len())
                            .sum::<usize>()
                    })
                    .sum(),
                max_len: cfg.max_new_tokens,
            })
            .collect();
        let pack_of = |&(k, s, n): &(usize, usize, usize)| {
            let grp = &all[kept[k]];
            let resp: Vec<&[u32]> = grp.completions[s..s + n]
                .iter()
                .map(|c| c.token_ids.as_slice())
                .collect();
            (grp.cursor, pack(self.task.prompt_ids(grp.problem), &resp))
        };
        let mut old: Vec<Option<Vec<f32>>> = vec![None; mbs.len()];
        let mut refs: Vec<Option<Vec<f32>>> = vec![None; mbs.len()];
        // With several mini-batches the weights move before the later ones are reached: take
        // pi_old (and the reference, the entropy) of every micro-batch first.
        let frozen_first = minis.len() > 1;
        if any_signal && frozen_first {
            for (mi, mb) in mbs.iter().enumerate() {
                let (cursor, pk) = pack_of(mb);
                if pk.tgt.is_empty() {
                    continue;
                }
                let fwd = match self.recorded.remove(&(cursor, mb.1)) {
                    Some(f) => f,
                    None => self.policy.forward(&pk, LOGIT_CHUNK)?,
                };
                self.take_old(&fwd, &pk, mi, &mut old, &mut refs, &mut ent_sum, &mut ent_n)?;
            }
        }
        for epoch in 0..cfg.ppo_epochs {
            for (range, norm) in minis.iter().zip(&norms) {
                let mut acc: Vec<Option<Tensor>> = vec![None; self.policy.opt.vars().len()];
                if any_signal {
                    for mi in range.clone() {
                        let (k, s, n) = mbs[mi];
                        let (cursor, pk) = pack_of(&mbs[mi]);
                        if pk.tgt.is_empty() {
                            continue;
                        }
                        let fwd = match self.recorded.remove(&(cursor, s)) {
                            Some(f) if epoch == 0 => f,
                            _ => self.policy.forward(&pk, LOGIT_CHUNK)?,
                        };
                        if epoch == 0 && !frozen_first {
                            // The weights that sampled: unchanged until this epoch's step.
                            self.take_old(
                                &fwd,
                                &pk,
                                mi,
                                &mut old,
                                &mut refs,
                                &mut ent_sum,
                                &mut ent_n,
                            )?;
                        }
                        let tb = TokenBatch {
                            seq: pk.seq.clone(),
                            old_logp: old[mi].clone().context("old log-probs")?,
                            ref_logp: refs[mi].clone(),
                            adv: adv[k][s..s + n].iter().map(|&a| a as f32).collect(),
                        };
                        let (loss, st) = policy_loss(fwd.logp(), &tb, &lcfg, norm)?;
                        if !st.loss.is_finite() {
                            bail!(self.nonfinite(&format!("the loss is {}", st.loss)));
                        }
                        if epoch == 0 {
                            stats.add(&st);
                        }
                        self.policy.backward(fwd, &loss, &mut acc)?;
                    }
                }
                grad_norm = self
                    .policy
                    .opt
                    .step(&acc, lr)
                    .map_err(|e| anyhow::anyhow!(self.nonfinite(&e.to_string())))?;
            }
        }
        // Forwards of groups that dynamic sampling dropped.
        self.recorded.clear();
        Ok(Update {
            stats,
            ent_sum,
            ent_n,
            grad_norm,
            lr,
            seconds: t_up.elapsed().as_secs_f64(),
        })
    }

    /// Append the metrics and the rollouts to their logs; save and evaluate when due.
    fn log(&mut self, m: &StepMetrics, b: &Batch) -> Result<()> {
        self.metrics.append(&serde_json::to_value(m)?)?;
        for grp in &b.all {
            for (c, r) in grp.completions.iter().zip(&grp.rewards) {
                self.rollouts.append(&json!({
                    "step": self.step,
                    "id": self.task.id(grp.problem),
                    "cursor": grp.cursor,
                    "response": c.text,
                    "tokens": c.token_ids.len(),
                    "finish_reason": c.finish_reason,
                    "reward": r,
                }))?;
            }
        }
        let (save_every, eval_every) = (self.cfg.save_every, self.cfg.eval_every);
        if (save_every > 0 && self.step.is_multiple_of(save_every)) || self.done() {
            self.save()?;
        }
        if (eval_every > 0 && self.step.is_multiple_of(eval_every)) || self.done() {
            self.eval_and_log()?;
        }
        Ok(())
    }

    /// pi_old's log-probs of micro-batch `mi` from a forward of the weights that sampled, the
    /// reference model's (for the KL), and the policy's entropies for the metrics.
    #[allow(clippy::too_many_arguments)]
    fn take_old(
        &self,
        fwd: &Forward,
        pk: &Packed,
        mi: usize,
        old: &mut [Option<Vec<f32>>],
        refs: &mut [Option<Vec<f32>>],
        ent_sum: &mut f64,
        ent_n: &mut usize,
    ) -> Result<()> {
        old[mi] = Some(
            fwd.logp()
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?,
        );
        let ent = fwd.entropy();
        *ent_sum += ent.iter().map(|&e| e as f64).sum::<f64>();
        *ent_n += ent.len();
        if let Some(r) = &self.reference {
            let (l, _) = token_logprobs(r, pk, LOGIT_CHUNK)?;
            refs[mi] = Some(l.to_vec1::<f32>()?);
        }
        Ok(())
    }

    fn nonfinite(&self, what: &str) -> String {
        let last = checkpoint::latest(&self.run)
            .map(|(_, p)| format!("the last good checkpoint is {}", p.display()))
            .unwrap_or_else(|| "no checkpoint was written yet".into());
        format!(
            "step {}: {what}; stopping without applying the update ({last}). Lower --lr or \
             --max-grad-norm and resume with --resume.",
            self.step + 1
        )
    }

    pub fn save(&mut self) -> Result<PathBuf> {
        let state = TrainerState {
            step: self.step,
            cursor: self.cursor,
            algo: self.cfg.algo.name().into(),
            seed: self.cfg.seed,
        };
        let (tok, gen) = (self.tokenizer, self.generation.clone());
        let policy = &mut self.policy;
        checkpoint::save(&self.run, &state, self.cfg.keep_last, |dir| {
            policy.save(dir, tok, &gen)
        })
    }

    /// Evaluate on the held-out task (if any) and append the result to RUN/eval.jsonl.
    pub fn eval_and_log(&mut self) -> Result<Option<Value>> {
        let Some(e) = self.eval_task else {
            return Ok(None);
        };
        let r = self.evaluate(e)?;
        self.evals.append(&r)?;
        self.last_eval = Some(r.clone());
        Ok(Some(r))
    }

    /// Greedy accuracy on held-out problems (first `eval_limit`), with a Wilson 95% interval.
    pub fn evaluate(&mut self, task: &dyn Task) -> Result<Value> {
        let n = task.len().min(self.cfg.eval_limit.max(1));
        let ids: Vec<String> = (0..n).map(|i| task.id(i)).collect();
        let prompts: Vec<(&str, &[u32])> = (0..n)
            .map(|i| (ids[i].as_str(), task.prompt_ids(i)))
            .collect();
        let greedy = egi_eval::run::Sampling {
            n: 1,
            temperature: 0.0,
            top_p: 1.0,
            max_new_tokens: self.cfg.max_new_tokens,
            seed: 0,
        };
        let view = self.policy.inference_model()?;
        let samples = egi_eval::run::sample_and_check(
            &view,
            &|ids| task.decode(ids),
            task.eos_ids(),
            &prompts,
            &greedy,
            &|i, text| task.check(i, text).correct,
        )?;
        let c = samples.iter().filter(|s| s.2).count();
        Ok(json!({
            "step": self.step,
            "n": n,
            "correct": c,
            "accuracy": c as f64 / n as f64,
            "ci95": egi_eval::metrics::wilson95(c, n),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::mini_batch_ranges;

    #[test]
    fn mini_batches_cover_every_micro_batch_once() {
        assert_eq!(mini_batch_ranges(8, 1), vec![0..8]);
        assert_eq!(mini_batch_ranges(8, 3), vec![0..2, 2..5, 5..8]);
        // More mini-batches than micro-batches: one micro-batch each.
        assert_eq!(mini_batch_ranges(2, 16), vec![0..1, 1..2]);
        // Nothing to train on: still one (empty) step, as with one mini-batch.
        assert_eq!(mini_batch_ranges(0, 4), vec![0..0]);
    }
}
