//! The trained model and everything that changes with it: trainable variables (all weights,
//! attention only, or LoRA adapters), the optimizer, and their checkpoints.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{backprop::GradStore, Tensor, Var};
use egi_model::{GenerationDefaults, Tokenizer, Transformer};

use crate::checkpoint::{ADAPTER_FILE, OPTIM_FILE};
use crate::config::{Backward, TrainConfig, Trainable};
use crate::lora::Lora;
use crate::optim::AdamW;
use crate::policy::{token_logprobs, LogprobPass, Packed};

pub struct Policy {
    pub model: Transformer,
    pub lora: Option<Lora>,
    pub opt: AdamW,
    /// Optimizer slot of each model parameter (None: frozen, or LoRA's adapters train).
    slot: Vec<Option<usize>>,
    /// Gradients through egi-model's hand-written backward (all weights or attention only);
    /// LoRA, or `backward = "autograd"`, goes through candle's autograd.
    fused: bool,
}

/// One micro-batch's forward: the token log-probabilities a loss is built from.
pub enum Forward {
    /// Through candle's autograd graph (LoRA, or on request).
    Autograd { logp: Tensor, ent: Vec<f32> },
    /// Through the hand-written pass: `logp` is a leaf whose gradient seeds its backward.
    Fused { pass: LogprobPass, logp: Var },
}

impl Forward {
    pub fn logp(&self) -> &Tensor {
        match self {
            Forward::Autograd { logp, .. } => logp,
            Forward::Fused { logp, .. } => logp.as_tensor(),
        }
    }
    pub fn entropy(&self) -> &[f32] {
        match self {
            Forward::Autograd { ent, .. } => ent,
            Forward::Fused { pass, .. } => &pass.ent,
        }
    }
    /// The recorded body pass (hand-written path only), e.g. for the fingerprint.
    pub fn body_pass(&self) -> Option<&egi_model::pass::Pass> {
        match self {
            Forward::Autograd { .. } => None,
            Forward::Fused { pass, .. } => Some(pass.body()),
        }
    }
}

impl Policy {
    pub fn new(mut model: Transformer, cfg: &TrainConfig) -> Result<Self> {
        let (lora, named) = match cfg.trainable {
            Trainable::Lora => {
                model.set_trainable(|_| false)?;
                let l = Lora::new(
                    &model,
                    &cfg.lora_targets,
                    cfg.lora_rank,
                    cfg.lora_alpha,
                    cfg.seed,
                )?;
                let v = l.vars();
                (Some(l), v)
            }
            t => {
                let pred = |n: &str| t == Trainable::All || n.contains(".self_attn.");
                model.set_trainable(pred)?;
                let named: Vec<(String, Var)> = model
                    .params()
                    .iter()
                    .filter_map(|p| p.var.clone().map(|v| (p.name.clone(), v)))
                    .collect();
                (None, named)
            }
        };
        let slot: Vec<Option<usize>> = if lora.is_some() {
            vec![None; model.params().len()]
        } else {
            let mut k = 0;
            model
                .params()
                .iter()
                .map(|p| {
                    p.var.as_ref().map(|_| {
                        k += 1;
                        k - 1
                    })
                })
                .collect()
        };
        let fused = lora.is_none() && cfg.backward == Backward::Fused;
        let opt = AdamW::new(cfg.optim(), named)?;
        Ok(Policy {
            model,
            lora,
            opt,
            slot,
            fused,
        })
    }

    /// Whether [`Policy::forward`] records the hand-written pass (not LoRA, not autograd).
    pub fn records_pass(&self) -> bool {
        self.fused
    }

    /// Forward of one packed micro-batch (vocabulary projection `chunk` tokens at a time).
    pub fn forward(&mut self, pk: &Packed, chunk: usize) -> Result<Forward> {
        if !self.fused {
            let (logp, ent) = token_logprobs(self.train_model()?, pk, chunk)?;
            return Ok(Forward::Autograd { logp, ent });
        }
        let pass = LogprobPass::record(&self.model, pk, chunk)?;
        let logp = Var::from_tensor(&pass.logp)?;
        Ok(Forward::Fused { pass, logp })
    }

    /// Backward of `loss` (built from `fwd.logp()`), its gradients added into `acc`.
    pub fn backward(&self, fwd: Forward, loss: &Tensor, acc: &mut [Option<Tensor>]) -> Result<()> {
        match fwd {
            Forward::Autograd { .. } => self.accumulate(acc, loss),
            Forward::Fused { pass, logp } => {
                let store = loss.backward()?;
                let d = match store.get(&logp) {
                    Some(d) => d.clone(),
                    None => logp.zeros_like()?,
                };
                let grads = pass.backward(&self.model, &d, &|i| self.slot[i].is_some())?;
                for (i, g) in grads.into_iter().enumerate() {
                    if let (Some(g), Some(k)) = (g, self.slot[i]) {
                        acc[k] = Some(match acc[k].take() {
                            Some(x) => (x + g)?,
                            None => g,
                        });
                    }
                }
                Ok(())
            }
        }
    }

    pub fn n_trainable(&self) -> usize {
        self.opt.vars().iter().map(|v| v.elem_count()).sum()
    }

    /// The model for a differentiable forward (LoRA merged with its graph).
    pub fn train_model(&mut self) -> Result<&Transformer> {
        if let Some(l) = &self.lora {
            l.apply(&mut self.model, true)?;
        }
        Ok(&self.model)
    }

    /// The current weights without autograd tracking (generation, the probe, evaluation).
    pub fn inference_model(&mut self) -> Result<Transformer> {
        if let Some(l) = &self.lora {
            l.apply(&mut self.model, false)?;
        }
        Ok(self.model.detached())
    }

    /// Gradients of the trainable variables, in optimizer order.
    pub fn grads(&self, store: &GradStore) -> Vec<Option<Tensor>> {
        self.opt
            .vars()
            .iter()
            .map(|v| store.get(v).cloned())
            .collect()
    }

    /// Backward of one micro-batch's loss, its gradients added into `acc` (optimizer order).
    pub fn accumulate(&self, acc: &mut [Option<Tensor>], loss: &Tensor) -> Result<()> {
        let store = loss.backward()?;
        for (a, g) in acc.iter_mut().zip(self.grads(&store)) {
            if let Some(g) = g {
                *a = Some(match a.take() {
                    Some(x) => (x + g)?,
                    None => g,
                });
            }
        }
        Ok(())
    }

    /// Model (merged weights, loadable by every egi command), optimizer moments and adapters.
    pub fn save(
        &mut self,
        dir: &Path,
        tok: Option<&Tokenizer>,
        gen: &GenerationDefaults,
    ) -> Result<()> {
        let m = self.inference_model()?;
        egi_model::save_hf_dir(&m, tok, gen, dir)?;
        self.opt.save(&dir.join(OPTIM_FILE))?;
        if let Some(l) = &self.lora {
            l.save(&dir.join(ADAPTER_FILE))?;
        }
        Ok(())
    }

    /// Restore the trainable weights (or adapters) and the optimizer from a checkpoint.
    pub fn load(&mut self, dir: &Path) -> Result<()> {
        match &self.lora {
            Some(l) => l.load(&dir.join(ADAPTER_FILE))?,
            None => {
                let path = dir.join("model.safetensors");
                let w = candle_core::safetensors::load(&path, self.model.device()).with_context(
                    || format!("{}: cannot read the checkpoint's weights", path.display()),
                )?;
                for (name, var) in self.opt.names().iter().zip(self.opt.vars()) {
                    let t = w
                        .get(name)
                        .with_context(|| format!("{}: no tensor {name}", path.display()))?;
                    var.set(&t.to_dtype(var.dtype())?)?;
                }
            }
        }
        self.opt.load(&dir.join(OPTIM_FILE))
    }
}
