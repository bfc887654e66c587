//! The trained model and everything that changes with it: trainable variables (all weights,
//! attention only, or LoRA adapters), the optimizer, and their checkpoints.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{backprop::GradStore, Tensor, Var};
use egi_model::{GenerationDefaults, Tokenizer, Transformer};

use crate::checkpoint::{ADAPTER_FILE, OPTIM_FILE};
use crate::config::{TrainConfig, Trainable};
use crate::lora::Lora;
use crate::optim::AdamW;

pub struct Policy {
    pub model: Transformer,
    pub lora: Option<Lora>,
    pub opt: AdamW,
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
        let opt = AdamW::new(cfg.optim(), named)?;
        Ok(Policy { model, lora, opt })
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
