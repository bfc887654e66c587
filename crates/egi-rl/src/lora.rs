//! LoRA adapters: W = W0 + (alpha / r) B A with A [r, in] random and B [out, r] zero, so
//! training starts from the unchanged model. The merged W is written into the model before
//! each forward (its graph reaches A and B), so the model code needs no LoRA branch and a
//! checkpoint's weights are the merged ones: any egi command loads them as a plain model.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Tensor, Var};
use egi_model::Transformer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Adapter {
    pub name: String,
    base: Tensor,
    pub a: Var,
    pub b: Var,
}

pub struct Lora {
    pub scale: f64,
    pub adapters: Vec<Adapter>,
}

/// HF weight-name suffix of a projection short name.
pub fn target_suffix(t: &str) -> Result<&'static str> {
    Ok(match t {
        "q" => "self_attn.q_proj.weight",
        "k" => "self_attn.k_proj.weight",
        "v" => "self_attn.v_proj.weight",
        "o" => "self_attn.o_proj.weight",
        "gate" => "mlp.gate_proj.weight",
        "up" => "mlp.up_proj.weight",
        "down" => "mlp.down_proj.weight",
        _ => bail!("unknown LoRA target `{t}`: use q, k, v, o, gate, up, down"),
    })
}

impl Lora {
    /// Adapters on every layer's `targets`; A ~ U(-1/sqrt(in), 1/sqrt(in)) (as peft's
    /// kaiming-uniform with a = sqrt(5)), B = 0.
    pub fn new(
        model: &Transformer,
        targets: &[String],
        rank: usize,
        alpha: f64,
        seed: u64,
    ) -> Result<Self> {
        let suffixes: Vec<&str> = targets
            .iter()
            .map(|t| target_suffix(t))
            .collect::<Result<_>>()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4c6f5241);
        let mut adapters = vec![];
        for p in model.params() {
            if !suffixes.iter().any(|s| p.name.ends_with(s)) {
                continue;
            }
            let (out, inp) = p.value.dims2()?;
            let bound = 1.0 / (inp as f64).sqrt();
            let a: Vec<f32> = (0..rank * inp)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            let a =
                Tensor::from_vec(a, (rank, inp), p.value.device())?.to_dtype(p.value.dtype())?;
            let b = Tensor::zeros((out, rank), p.value.dtype(), p.value.device())?;
            adapters.push(Adapter {
                name: p.name.clone(),
                base: p.value.detach(),
                a: Var::from_tensor(&a)?,
                b: Var::from_tensor(&b)?,
            });
        }
        if adapters.is_empty() {
            bail!("no weights match the LoRA targets {targets:?}");
        }
        Ok(Lora {
            scale: alpha / rank as f64,
            adapters,
        })
    }

    /// (name, variable) pairs for the optimizer.
    pub fn vars(&self) -> Vec<(String, Var)> {
        self.adapters
            .iter()
            .flat_map(|a| {
                [
                    (format!("{}.lora_A", a.name), a.a.clone()),
                    (format!("{}.lora_B", a.name), a.b.clone()),
                ]
            })
            .collect()
    }

    /// Write W0 + s B A into the model (with its graph when `grad`).
    pub fn apply(&self, model: &mut Transformer, grad: bool) -> Result<()> {
        for ad in &self.adapters {
            let delta = (ad.b.as_tensor().matmul(ad.a.as_tensor())? * self.scale)?;
            let w = (&ad.base + delta)?;
            model.set_value(&ad.name, if grad { w } else { w.detach() })?;
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let map: HashMap<String, Tensor> = self
            .vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        candle_core::safetensors::save(&map, path)
            .with_context(|| format!("{}: cannot write adapters", path.display()))
    }

    pub fn load(&self, path: &Path) -> Result<()> {
        let dev = self.adapters[0].base.device().clone();
        let map = candle_core::safetensors::load(path, &dev)
            .with_context(|| format!("{}: cannot read adapters", path.display()))?;
        for (n, v) in self.vars() {
            let t = map.get(&n).with_context(|| {
                format!(
                    "{}: no adapter `{n}` (different LoRA targets or rank?)",
                    path.display()
                )
            })?;
            if t.dims() != v.dims() {
                bail!(
                    "{}: adapter `{n}` has shape {:?}, expected {:?}",
                    path.display(),
                    t.dims(),
                    v.dims()
                );
            }
            v.set(t)?;
        }
        Ok(())
    }
}
