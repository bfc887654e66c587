//! AdamW with warm-up and a cosine or constant schedule, global-norm gradient clipping, and a
//! state that can be saved and restored exactly.
//!
//! Written here rather than taken from candle-nn: candle_nn::AdamW keeps its moments private,
//! so a run could not be checkpointed and resumed bit-for-bit.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    Cosine,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptimConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    pub schedule: Schedule,
    /// Cosine decays to lr * min_lr_ratio at the last step.
    pub min_lr_ratio: f64,
    /// Global gradient-norm clip (0 = off).
    pub max_grad_norm: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            lr: 1e-6,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            warmup_steps: 0,
            schedule: Schedule::Constant,
            min_lr_ratio: 0.0,
            max_grad_norm: 1.0,
        }
    }
}

impl OptimConfig {
    /// Learning rate of optimizer step `step` (0-based) out of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let p = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let min = self.lr * self.min_lr_ratio;
                min + 0.5 * (self.lr - min) * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }
}

/// Named trainable variables, the order fixed (it is the order of the saved moments).
pub struct AdamW {
    pub cfg: OptimConfig,
    names: Vec<String>,
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Optimizer steps taken (bias correction and the schedule use it).
    pub t: usize,
}

impl AdamW {
    pub fn new(cfg: OptimConfig, params: Vec<(String, Var)>) -> Result<Self> {
        let mut names = vec![];
        let mut vars = vec![];
        let mut m = vec![];
        let mut v = vec![];
        for (n, var) in params {
            m.push(var.as_tensor().zeros_like()?);
            v.push(var.as_tensor().zeros_like()?);
            names.push(n);
            vars.push(var);
        }
        Ok(AdamW {
            cfg,
            names,
            vars,
            m,
            v,
            t: 0,
        })
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// One update with the given gradients (one per variable, None = zero) at learning rate
    /// `lr`. Returns the gradient norm before clipping; a non-finite norm changes nothing and
    /// is an error.
    pub fn step(&mut self, grads: &[Option<Tensor>], lr: f64) -> Result<f64> {
        if grads.len() != self.vars.len() {
            bail!(
                "{} gradients for {} variables",
                grads.len(),
                self.vars.len()
            );
        }
        let mut sq = 0f64;
        for g in grads.iter().flatten() {
            sq += g
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
        }
        let norm = sq.sqrt();
        if !norm.is_finite() {
            bail!("gradient norm is {norm}: not applying the update");
        }
        let scale = if self.cfg.max_grad_norm > 0.0 && norm > self.cfg.max_grad_norm {
            self.cfg.max_grad_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.t += 1;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        for (i, var) in self.vars.iter().enumerate() {
            let w = var.as_tensor();
            let g = match &grads[i] {
                Some(g) => (g * scale)?,
                None => w.zeros_like()?,
            };
            let m = ((&self.m[i] * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let upd = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.cfg.eps)?)?;
            let decayed = if self.cfg.weight_decay > 0.0 {
                (w * (1.0 - lr * self.cfg.weight_decay))?
            } else {
                w.clone()
            };
            var.set(&(decayed - (upd * lr)?)?.detach())?;
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(norm)
    }

    /// Moments and step count as safetensors (`m.<name>`, `v.<name>`, `t`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (i, n) in self.names.iter().enumerate() {
            map.insert(format!("m.{n}"), self.m[i].contiguous()?);
            map.insert(format!("v.{n}"), self.v[i].contiguous()?);
        }
        map.insert(
            "t".into(),
            Tensor::new(
                &[self.t as i64],
                self.m
                    .first()
                    .map_or(&candle_core::Device::Cpu, |t| t.device()),
            )?,
        );
        candle_core::safetensors::save(&map, path)
            .with_context(|| format!("{}: cannot write optimizer state", path.display()))
    }

    pub fn load(&mut self, path: &Path) -> Result<()> {
        let dev = self
            .vars
            .first()
            .map(|v| v.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        let map = candle_core::safetensors::load(path, &dev)
            .with_context(|| format!("{}: cannot read optimizer state", path.display()))?;
        for (i, n) in self.names.iter().enumerate() {
            let get = |k: String| -> Result<Tensor> {
                let t = map.get(&k).with_context(|| {
                    format!(
                        "{}: no tensor `{k}` (the run's trainable set differs from the checkpoint's)",
                        path.display()
                    )
                })?;
                if t.dims() != self.vars[i].dims() {
                    bail!(
                        "{}: `{k}` has shape {:?}, expected {:?}",
                        path.display(),
                        t.dims(),
                        self.vars[i].dims()
                    );
                }
                Ok(t.to_dtype(self.vars[i].dtype())?)
            };
            self.m[i] = get(format!("m.{n}"))?;
            self.v[i] = get(format!("v.{n}"))?;
        }
        let t = map.get("t").context("optimizer state without `t`")?;
        self.t = t.to_vec1::<i64>()?[0] as usize;
        Ok(())
    }
}
