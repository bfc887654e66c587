//! AdamW with warm-up and a cosine or constant schedule, global-norm gradient clipping, and a
//! state that can be saved and restored exactly.
//!
//! Written here rather than taken from candle-nn: candle_nn::AdamW keeps its moments private,
//! so a run could not be checkpointed and resumed bit-for-bit.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
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
            m.push(vec![0f32; var.elem_count()]);
            v.push(vec![0f32; var.elem_count()]);
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
    /// `lr`. Returns the gradient norm before clipping; a non-finite norm, or an update that
    /// would make a weight diverge, is an error and leaves that weight unchanged.
    ///
    /// The arithmetic runs on plain f32 slices (rayon over chunks): with candle tensor ops it
    /// would allocate a dozen full-size temporaries per variable.
    pub fn step(&mut self, grads: &[Option<Tensor>], lr: f64) -> Result<f64> {
        if grads.len() != self.vars.len() {
            bail!(
                "{} gradients for {} variables",
                grads.len(),
                self.vars.len()
            );
        }
        // Gradients are read in place where they are f32 on the CPU (the common case): a copy
        // of every gradient cost as much as the update itself.
        let gs: Vec<Option<F32View>> = grads
            .iter()
            .map(|g| g.as_ref().map(F32View::new).transpose())
            .collect::<Result<_>>()?;
        let sq: f64 = gs
            .iter()
            .flatten()
            .map(|g| {
                g.slice()
                    .par_chunks(CH)
                    .map(sum_sq)
                    .collect::<Vec<f64>>()
                    .iter()
                    .sum::<f64>()
            })
            .sum();
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
        let h = Hyper {
            b1: self.cfg.beta1 as f32,
            b2: self.cfg.beta2 as f32,
            eps: self.cfg.eps as f32,
            c1: (1.0 - self.cfg.beta1.powi(self.t as i32)) as f32,
            c2: (1.0 - self.cfg.beta2.powi(self.t as i32)) as f32,
            lr: lr as f32,
            decay: (1.0 - lr * self.cfg.weight_decay) as f32,
            scale: scale as f32,
        };
        for (i, var) in self.vars.iter().enumerate() {
            let w = F32View::new(var.as_tensor())?;
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            let g = gs[i].as_ref().map(|g| g.slice());
            let mut out = vec![0f32; w.slice().len()];
            let ok = out
                .par_chunks_mut(CH)
                .zip(w.slice().par_chunks(CH))
                .zip(m.par_chunks_mut(CH))
                .zip(v.par_chunks_mut(CH))
                .enumerate()
                .map(|(c, (((o, w), m), v))| {
                    let g = g.map(|g| &g[c * CH..c * CH + w.len()]);
                    adam_chunk(&h, w, g, m, v, o)
                })
                .reduce(|| true, |a, b| a && b);
            drop(w);
            if !ok {
                let worst = out.iter().fold(0f32, |a, &x| {
                    if x.is_finite() {
                        a.max(x.abs())
                    } else {
                        f32::INFINITY
                    }
                });
                bail!(
                    "the update makes {} diverge (max |w| = {worst:e})",
                    self.names[i]
                );
            }
            let t = Tensor::from_vec(out, var.shape(), var.device())?.to_dtype(var.dtype())?;
            var.set(&t)?;
        }
        Ok(norm)
    }

    /// Moments and step count as safetensors (`m.<name>`, `v.<name>`, `t`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (i, n) in self.names.iter().enumerate() {
            let dev = self.vars[i].device();
            map.insert(
                format!("m.{n}"),
                Tensor::from_slice(&self.m[i], self.vars[i].shape(), dev)?,
            );
            map.insert(
                format!("v.{n}"),
                Tensor::from_slice(&self.v[i], self.vars[i].shape(), dev)?,
            );
        }
        map.insert(
            "t".into(),
            Tensor::new(&[self.t as i64], &candle_core::Device::Cpu)?,
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
            let get = |k: String| -> Result<Vec<f32>> {
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
                Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
            };
            self.m[i] = get(format!("m.{n}"))?;
            self.v[i] = get(format!("v.{n}"))?;
        }
        let t = map.get("t").context("optimizer state without `t`")?;
        self.t = t.to_vec1::<i64>()?[0] as usize;
        Ok(())
    }
}

/// Elements per parallel task of the update.
const CH: usize = 1 << 14;

/// A tensor's elements as f32: borrowed from the storage when it already is contiguous f32 on
/// the CPU, else copied.
enum F32View<'a> {
    Borrowed(candle_core::StorageRef<'a>, std::ops::Range<usize>),
    Owned(Vec<f32>),
}

impl<'a> F32View<'a> {
    fn new(t: &'a Tensor) -> Result<Self> {
        if t.dtype() == DType::F32 {
            let (st, l) = t.storage_and_layout();
            if let (candle_core::Storage::Cpu(_), Some((a, b))) = (&*st, l.contiguous_offsets()) {
                return Ok(F32View::Borrowed(st, a..b));
            }
        }
        Ok(F32View::Owned(
            t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
        ))
    }
    fn slice(&self) -> &[f32] {
        match self {
            F32View::Borrowed(st, r) => match &**st {
                candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) => &v[r.clone()],
                _ => unreachable!("checked in new"),
            },
            F32View::Owned(v) => v,
        }
    }
}

/// The update's constants, in f32 (as PyTorch's AdamW computes it).
struct Hyper {
    b1: f32,
    b2: f32,
    eps: f32,
    /// Bias corrections 1 - beta^t.
    c1: f32,
    c2: f32,
    lr: f32,
    decay: f32,
    /// Gradient clipping factor.
    scale: f32,
}

/// Sum of squares in f64, with independent accumulators so that it vectorises.
fn sum_sq(x: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for k in 0..8 {
            acc[k] += c[k] as f64 * c[k] as f64;
        }
    }
    let tail: f64 = it.remainder().iter().map(|&v| v as f64 * v as f64).sum();
    acc.iter().sum::<f64>() + tail
}

/// One chunk of the AdamW update, written to `out`; false when a new weight is not finite or
/// beyond 1e30. Dispatches to a copy compiled for AVX-512 when the CPU has it (the loop is
/// the same; the compiler vectorises it 16 wide).
fn adam_chunk(
    h: &Hyper,
    w: &[f32],
    g: Option<&[f32]>,
    m: &mut [f32],
    v: &mut [f32],
    out: &mut [f32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            #[target_feature(enable = "avx512f")]
            unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the CPU supports the feature the closure is compiled for.
            return unsafe { wide(|| adam_chunk_impl(h, w, g, m, v, out)) };
        }
    }
    adam_chunk_impl(h, w, g, m, v, out)
}

#[inline(always)]
fn adam_chunk_impl(
    h: &Hyper,
    w: &[f32],
    g: Option<&[f32]>,
    m: &mut [f32],
    v: &mut [f32],
    out: &mut [f32],
) -> bool {
    let n = w.len();
    let (m, v, out) = (&mut m[..n], &mut v[..n], &mut out[..n]);
    let mut bad = false;
    let zeros;
    let g = match g {
        Some(g) => &g[..n],
        None => {
            zeros = vec![0f32; n];
            &zeros[..]
        }
    };
    for k in 0..n {
        let gk = g[k] * h.scale;
        let mk = h.b1 * m[k] + (1.0 - h.b1) * gk;
        let vk = h.b2 * v[k] + (1.0 - h.b2) * gk * gk;
        m[k] = mk;
        v[k] = vk;
        let upd = (mk / h.c1) / ((vk / h.c2).sqrt() + h.eps);
        let nw = w[k] * h.decay - h.lr * upd;
        out[k] = nw;
        // NaN is caught too: it is not finite.
        bad |= !nw.is_finite() | (nw.abs() > 1e30);
    }
    !bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::Optimizer;

    /// Three steps of ours against candle-nn's AdamW (an independent implementation of the
    /// same update), with weight decay, bias correction and, in the second case, clipping.
    #[test]
    fn equals_candle_nn_adamw() -> Result<()> {
        for clip in [0.0, 0.5] {
            let dev = Device::Cpu;
            let shapes: [&[usize]; 3] = [&[7, 5], &[40_000], &[3]];
            let mk = |seed: u64| -> Result<Vec<Var>> {
                shapes
                    .iter()
                    .map(|s| {
                        let n: usize = s.iter().product();
                        let v: Vec<f32> = (0..n)
                            .map(|i| ((i as u64 * 7919 + seed) % 1000) as f32 / 500.0 - 1.0)
                            .collect();
                        Ok(Var::from_tensor(&Tensor::from_vec(v, *s, &dev)?)?)
                    })
                    .collect()
            };
            let ours = mk(3)?;
            let theirs = mk(3)?;
            let cfg = OptimConfig {
                lr: 1e-2,
                weight_decay: 0.1,
                max_grad_norm: clip,
                ..OptimConfig::default()
            };
            let named = ours
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("p{i}"), v.clone()))
                .collect();
            let mut a = AdamW::new(cfg.clone(), named)?;
            let mut b = candle_nn::AdamW::new(
                theirs.clone(),
                candle_nn::ParamsAdamW {
                    lr: cfg.lr,
                    beta1: cfg.beta1,
                    beta2: cfg.beta2,
                    eps: cfg.eps,
                    weight_decay: cfg.weight_decay,
                },
            )?;
            for step in 0..3u64 {
                let grads: Vec<Tensor> = mk(100 + step)?
                    .iter()
                    .map(|v| (v.as_tensor() * (step as f64 + 1.0)).unwrap())
                    .collect();
                let norm = a.step(&grads.iter().cloned().map(Some).collect::<Vec<_>>(), cfg.lr)?;
                let want_norm: f64 = grads
                    .iter()
                    .map(|g| {
                        g.sqr()
                            .unwrap()
                            .sum_all()
                            .unwrap()
                            .to_scalar::<f32>()
                            .unwrap() as f64
                    })
                    .sum::<f64>()
                    .sqrt();
                assert!(
                    (norm - want_norm).abs() < 1e-4 * want_norm,
                    "{norm} vs {want_norm}"
                );
                let s = if clip > 0.0 && norm > clip {
                    clip / (norm + 1e-6)
                } else {
                    1.0
                };
                // candle-nn's step reads gradients from a GradStore: build one whose
                // gradient for each var is the (clipped) g, via the loss sum(w * g).
                let mut loss = Tensor::zeros((), DType::F32, &dev)?;
                for (v, g) in theirs.iter().zip(&grads) {
                    loss = (loss + (v.as_tensor() * (g * s)?)?.sum_all()?)?;
                }
                b.step(&loss.backward()?)?;
                for (x, y) in ours.iter().zip(&theirs) {
                    let d = (x.as_tensor() - y.as_tensor())?
                        .abs()?
                        .max_all()?
                        .to_scalar::<f32>()?;
                    assert!(d < 2e-6, "clip {clip} step {step}: differs by {d}");
                }
            }
            // The update moved the weights (the comparison is not of two unchanged sets).
            let moved = (ours[0].as_tensor() - mk(3)?[0].as_tensor())?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(moved > 1e-3, "{moved}");
        }
        Ok(())
    }

    #[test]
    fn diverging_update_is_refused() -> Result<()> {
        let v = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &candle_core::Device::Cpu)?)?;
        let mut a = AdamW::new(
            OptimConfig {
                lr: 1e38,
                max_grad_norm: 0.0,
                ..OptimConfig::default()
            },
            vec![("w".into(), v.clone())],
        )?;
        let g = Tensor::new(&[1f32, -1.0], &candle_core::Device::Cpu)?;
        let e = a.step(&[Some(g)], 1e38).unwrap_err().to_string();
        assert!(e.contains("the update makes w diverge"), "{e}");
        // The weights are left as they were.
        assert_eq!(v.as_tensor().to_vec1::<f32>()?, vec![1.0, 2.0]);
        Ok(())
    }
}
