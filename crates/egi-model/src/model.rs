//! One decoder-only transformer definition for Llama, Qwen2 and Qwen3.
//!
//! Two paths share this code:
//! - the *differentiable* path (`forward`), built only from candle ops that record a backward
//!   (candle's fused rope, rms_norm, softmax_last_dim and KV-cache append silently drop
//!   gradients, see STACK-NOTES);
//! - the *inference* path (`forward_cached`), which may use the fused ops and a KV cache.
//!
//! Tests prove the first against finite differences and the second against the first.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Module, Tensor, Var, D};

use crate::config::ModelConfig;
use crate::layer;
use crate::weights::Weights;

/// One named weight. `var` is set when the weight is trainable: `value` then is the variable's
/// tensor, so backward records its gradient; frozen weights are plain tensors, which backward
/// skips.
#[derive(Clone)]
pub struct Param {
    pub name: String,
    pub value: Tensor,
    pub var: Option<Var>,
}

/// Indices into `params` of one layer's weights.
#[derive(Clone, Copy)]
pub(crate) struct Layer {
    pub(crate) input_norm: usize,
    pub(crate) q: usize,
    pub(crate) k: usize,
    pub(crate) v: usize,
    pub(crate) o: usize,
    pub(crate) q_bias: Option<usize>,
    pub(crate) k_bias: Option<usize>,
    pub(crate) v_bias: Option<usize>,
    pub(crate) q_norm: Option<usize>,
    pub(crate) k_norm: Option<usize>,
    pub(crate) post_norm: usize,
    pub(crate) gate: usize,
    pub(crate) up: usize,
    pub(crate) down: usize,
}

/// One layer's weights (HF layout: [out, in]).
pub struct LayerView<'a> {
    pub input_norm: &'a Tensor,
    pub q: &'a Tensor,
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    pub o: &'a Tensor,
    pub q_bias: Option<&'a Tensor>,
    pub k_bias: Option<&'a Tensor>,
    pub v_bias: Option<&'a Tensor>,
    pub q_norm: Option<&'a Tensor>,
    pub k_norm: Option<&'a Tensor>,
    pub post_norm: &'a Tensor,
    pub gate: &'a Tensor,
    pub up: &'a Tensor,
    pub down: &'a Tensor,
}

/// What [`Transformer::load_state`] left aside: names it does not know (skipped, non-strict
/// only) and weights that were not given (unchanged).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StateLoad {
    pub unexpected: Vec<String>,
    pub missing: Vec<String>,
}

pub struct Transformer {
    pub cfg: ModelConfig,
    params: Vec<Param>,
    index: HashMap<String, usize>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) embed: usize,
    pub(crate) final_norm: usize,
    pub(crate) lm_head: Option<usize>,
    /// RoPE tables [max_pos, head_dim/2], in the model dtype.
    cos: Tensor,
    sin: Tensor,
    dtype: DType,
    device: Device,
}

/// Per-layer key/value cache for the inference path: [B, n_kv, S, head_dim] each.
pub struct KvCache {
    max_len: usize,
    len: usize,
    kv: Vec<Option<candle_nn::kv_cache::KvCache>>,
}

impl KvCache {
    pub fn new(n_layers: usize, max_len: usize) -> Self {
        KvCache {
            max_len,
            len: 0,
            kv: (0..n_layers)
                .map(|_| Some(candle_nn::kv_cache::KvCache::new(2, max_len)))
                .collect(),
        }
    }
    /// Tokens held so far (including left padding).
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Keep only the given batch rows (drop finished sequences).
    pub fn select_rows(&mut self, rows: &Tensor) -> Result<()> {
        for kv in self.kv.iter_mut() {
            let Some(c) = kv.as_ref() else { continue };
            let (Some(k), Some(v)) = (c.k()?, c.v()?) else {
                continue;
            };
            // The cache holds a view into a preallocated buffer: copy before selecting.
            let k = k.contiguous()?.index_select(rows, 0)?;
            let v = v.contiguous()?.index_select(rows, 0)?;
            let mut fresh = candle_nn::kv_cache::KvCache::new(2, self.max_len);
            fresh.append(&k, &v)?;
            *kv = Some(fresh);
        }
        Ok(())
    }
}

/// Where each query sits and what it may attend to.
pub struct AttnInput {
    /// Rotary position of each token, [B, T] u32.
    pub positions: Tensor,
    /// Additive mask [B, 1, T, S] (0 or a large negative), S = cached + T keys.
    pub mask: Tensor,
}

/// Large negative instead of -inf: a fully masked row (a padding query) then gets uniform
/// weights instead of NaN, and its output is ignored anyway.
const NEG: f64 = -1e30;

impl AttnInput {
    /// Plain causal attention over B sequences of T tokens starting at position 0. Right padding
    /// needs nothing more: causality keeps real tokens from seeing the pads after them.
    pub fn causal(b: usize, t: usize, dtype: DType, device: &Device) -> Result<Self> {
        let pos: Vec<u32> = (0..b).flat_map(|_| 0..t as u32).collect();
        let mask: Vec<f64> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { NEG }))
            .collect();
        let mask = Tensor::from_vec(mask, (1, 1, t, t), device)?
            .to_dtype(dtype)?
            .broadcast_as((b, 1, t, t))?
            .contiguous()?;
        Ok(AttnInput {
            positions: Tensor::from_vec(pos, (b, t), device)?,
            mask,
        })
    }

    /// One row holding a shared prefix of `prefix` tokens followed by independent blocks (the
    /// responses of one prompt, packed): block i continues the prefix at position `prefix` and
    /// sees the prefix and its own earlier tokens only. The prefix is then computed once for
    /// the whole group, in the forward and in the backward.
    pub fn packed(prefix: usize, blocks: &[usize], dtype: DType, device: &Device) -> Result<Self> {
        let t = prefix + blocks.iter().sum::<usize>();
        let mut pos = Vec::with_capacity(t);
        let mut block_start = vec![0usize; t]; // start index of the query's block (0 = prefix)
        pos.extend(0..prefix as u32);
        let mut start = prefix;
        for &n in blocks {
            for i in 0..n {
                pos.push((prefix + i) as u32);
                block_start[start + i] = start;
            }
            start += n;
        }
        let mut mask = Vec::with_capacity(t * t);
        for (q, &bs) in block_start.iter().enumerate() {
            for k in 0..t {
                let visible = k <= q && (k < prefix || k >= bs);
                mask.push(if visible { 0.0 } else { NEG });
            }
        }
        Ok(AttnInput {
            positions: Tensor::from_vec(pos, (1, t), device)?,
            mask: Tensor::from_vec(mask, (1, 1, t, t), device)?.to_dtype(dtype)?,
        })
    }

    /// Left-padded rows: row r has `pad[r]` padding tokens first. `past` keys are already
    /// cached; `t` new tokens follow. Pads are never attended to, positions skip them.
    pub fn left_padded(
        pad: &[usize],
        past: usize,
        t: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let b = pad.len();
        let s = past + t;
        let mut pos = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t * s);
        for &p in pad {
            for i in 0..t {
                let q = past + i;
                pos.push(q.saturating_sub(p) as u32);
                for j in 0..s {
                    mask.push(if j <= q && j >= p { 0.0 } else { NEG });
                }
            }
        }
        Ok(AttnInput {
            positions: Tensor::from_vec(pos, (b, t), device)?,
            mask: Tensor::from_vec(mask, (b, 1, t, s), device)?.to_dtype(dtype)?,
        })
    }
}

fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    linear_any(x, w, b, false)
}

/// `fused` (inference only): few rows go through the decoding kernel, which has no backward.
fn linear_any(x: &Tensor, w: &Tensor, b: Option<&Tensor>, fused: bool) -> Result<Tensor> {
    if fused {
        let dims = x.dims().to_vec();
        let rows: usize = dims[..dims.len() - 1].iter().product();
        if rows <= crate::kernels::MAX_ROWS {
            let x2 = x.reshape((rows, dims[dims.len() - 1]))?.contiguous()?;
            if let Some(y) = crate::kernels::small_matmul_t(&x2, w)? {
                let mut od = dims.clone();
                *od.last_mut().unwrap() = w.dim(0)?;
                let y = y.reshape(od)?;
                return Ok(match b {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                });
            }
        }
    }
    // [.., in] x [out, in]^T: gemm reads the transposed weight in place, no copy.
    let y = match x.dims() {
        [b0, t, i] => x
            .reshape((b0 * t, *i))?
            .matmul(&w.t()?)?
            .reshape((*b0, *t, ()))?,
        _ => x.matmul(&w.t()?)?,
    };
    Ok(match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

/// RMSNorm over the last dimension from differentiable ops.
fn rms_norm_diff(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let dt = x.dtype();
    if matches!(dt, DType::BF16 | DType::F16) {
        // As transformers does: the mean of squares and the scaling in f32, then back to the
        // model's dtype before the weight (in bf16 the mean alone moves log-probs by nats).
        let xf = x.to_dtype(DType::F32)?;
        let ms = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let y = xf.broadcast_div(&(ms + eps)?.sqrt()?)?.to_dtype(dt)?;
        return Ok(y.broadcast_mul(w)?);
    }
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let x = x.broadcast_div(&(ms + eps)?.sqrt()?)?;
    Ok(x.broadcast_mul(w)?)
}

fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    Ok(Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?)
}

impl Transformer {
    /// Build from HF-named tensors; every weight is converted to `dtype` and starts frozen.
    pub fn from_weights(
        cfg: ModelConfig,
        mut w: Weights,
        dtype: DType,
        device: &Device,
        source: &str,
    ) -> Result<Self> {
        let mut params = Vec::new();
        let mut index = HashMap::new();
        let mut take = |name: &str, shape: &[usize], required: bool| -> Result<Option<usize>> {
            match w.remove(name) {
                None if required => {
                    bail!("{source}: tensor \"{name}\" is missing (expected shape {shape:?})")
                }
                None => Ok(None),
                Some(t) => {
                    if t.dims() != shape {
                        bail!(
                            "{source}: tensor \"{name}\" has shape {:?}, config implies {shape:?}",
                            t.dims()
                        );
                    }
                    let value = t.to_device(device)?.to_dtype(dtype)?.detach();
                    index.insert(name.to_string(), params.len());
                    params.push(Param {
                        name: name.to_string(),
                        value,
                        var: None,
                    });
                    Ok(Some(params.len() - 1))
                }
            }
        };
        let h = cfg.hidden_size;
        let (qd, kvd, hd) = (
            cfg.num_heads * cfg.head_dim,
            cfg.num_kv_heads * cfg.head_dim,
            cfg.head_dim,
        );
        let embed = take("model.embed_tokens.weight", &[cfg.vocab_size, h], true)?.unwrap();
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for l in 0..cfg.num_layers {
            let p = |s: &str| format!("model.layers.{l}.{s}");
            let bias = cfg.attention_bias;
            layers.push(Layer {
                input_norm: take(&p("input_layernorm.weight"), &[h], true)?.unwrap(),
                q: take(&p("self_attn.q_proj.weight"), &[qd, h], true)?.unwrap(),
                k: take(&p("self_attn.k_proj.weight"), &[kvd, h], true)?.unwrap(),
                v: take(&p("self_attn.v_proj.weight"), &[kvd, h], true)?.unwrap(),
                o: take(&p("self_attn.o_proj.weight"), &[h, qd], true)?.unwrap(),
                q_bias: take(&p("self_attn.q_proj.bias"), &[qd], bias)?,
                k_bias: take(&p("self_attn.k_proj.bias"), &[kvd], bias)?,
                v_bias: take(&p("self_attn.v_proj.bias"), &[kvd], bias)?,
                q_norm: take(&p("self_attn.q_norm.weight"), &[hd], cfg.qk_norm)?,
                k_norm: take(&p("self_attn.k_norm.weight"), &[hd], cfg.qk_norm)?,
                post_norm: take(&p("post_attention_layernorm.weight"), &[h], true)?.unwrap(),
                gate: take(
                    &p("mlp.gate_proj.weight"),
                    &[cfg.intermediate_size, h],
                    true,
                )?
                .unwrap(),
                up: take(&p("mlp.up_proj.weight"), &[cfg.intermediate_size, h], true)?.unwrap(),
                down: take(
                    &p("mlp.down_proj.weight"),
                    &[h, cfg.intermediate_size],
                    true,
                )?
                .unwrap(),
            });
        }
        let final_norm = take("model.norm.weight", &[h], true)?.unwrap();
        let lm_head = if cfg.tie_word_embeddings {
            None
        } else {
            take("lm_head.weight", &[cfg.vocab_size, h], true)?
        };
        // Checkpoints that tie embeddings sometimes still carry lm_head: ignore it then.
        w.remove("lm_head.weight");
        w.retain(|k, _| !k.ends_with("rotary_emb.inv_freq"));
        if let Some(extra) = w.keys().next() {
            bail!(
                "{source}: unexpected tensor \"{extra}\" ({} unused) for a {} model",
                w.len(),
                cfg.arch.model_type()
            );
        }
        let (cos, sin) = rope_tables(&cfg, dtype, device)?;
        Ok(Transformer {
            cfg,
            params,
            index,
            layers,
            embed,
            final_norm,
            lm_head,
            cos,
            sin,
            dtype,
            device: device.clone(),
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn params(&self) -> &[Param] {
        &self.params
    }
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.index.get(name).map(|&i| &self.params[i])
    }

    /// Make exactly the parameters whose name satisfies `pred` trainable; the rest frozen.
    pub fn set_trainable(&mut self, pred: impl Fn(&str) -> bool) -> Result<Vec<Var>> {
        let mut vars = vec![];
        for p in self.params.iter_mut() {
            if pred(&p.name) {
                let var = match &p.var {
                    Some(v) => v.clone(),
                    None => Var::from_tensor(&p.value)?,
                };
                p.value = var.as_tensor().clone();
                vars.push(var.clone());
                p.var = Some(var);
            } else {
                p.value = p.value.detach();
                p.var = None;
            }
        }
        Ok(vars)
    }

    /// Replace one weight's value, e.g. by W0 + s B A for LoRA: the value keeps its graph, so
    /// gradients flow to whatever it was computed from. The weight is no longer a variable.
    pub fn set_value(&mut self, name: &str, value: Tensor) -> Result<()> {
        let i = *self
            .index
            .get(name)
            .with_context(|| format!("no weight named {name}"))?;
        let p = &mut self.params[i];
        if p.value.dims() != value.dims() {
            bail!(
                "{name}: new value has shape {:?}, expected {:?}",
                value.dims(),
                p.value.dims()
            );
        }
        p.value = value;
        p.var = None;
        Ok(())
    }

    /// Replace weights by HF name, all or none: every name and shape is checked before any
    /// weight changes. Values are converted to the model's dtype and device. `strict`: every
    /// weight must be given and every name known (as torch's `load_state_dict`); otherwise
    /// the names this model lacks are returned as unexpected and the rest keep their values.
    /// A tied model's `lm_head.weight` is accepted when it equals the embedding it is tied to.
    pub fn load_state(&mut self, mut w: Weights, strict: bool) -> Result<StateLoad> {
        let mut report = StateLoad::default();
        if self.lm_head.is_none() {
            if let Some(head) = w.remove("lm_head.weight") {
                let embed = w
                    .get("model.embed_tokens.weight")
                    .unwrap_or(&self.params[self.embed].value);
                let same = head.dims() == embed.dims()
                    && head
                        .to_device(&Device::Cpu)?
                        .to_dtype(DType::F32)?
                        .eq(&embed.to_device(&Device::Cpu)?.to_dtype(DType::F32)?)?
                        .flatten_all()?
                        .min(0)?
                        .to_scalar::<u8>()?
                        == 1;
                if !same {
                    bail!(
                        "lm_head.weight: this model ties it to model.embed_tokens.weight \
                         (tie_word_embeddings), but the value given differs from the embedding: \
                         hand over the tied weights, or load an untied checkpoint"
                    );
                }
            }
        }
        w.retain(|k, _| !k.ends_with("rotary_emb.inv_freq"));
        let mut updates = Vec::with_capacity(w.len());
        let mut names: Vec<&String> = w.keys().collect();
        names.sort();
        for name in names {
            let Some(&i) = self.index.get(name.as_str()) else {
                report.unexpected.push(name.clone());
                continue;
            };
            let (given, want) = (w[name].dims(), self.params[i].value.dims());
            if given != want {
                bail!("{name}: shape {given:?} given, this model's is {want:?}");
            }
            updates.push((i, name));
        }
        report.missing = self
            .params
            .iter()
            .filter(|p| !w.contains_key(&p.name))
            .map(|p| p.name.clone())
            .collect();
        if strict && !(report.unexpected.is_empty() && report.missing.is_empty()) {
            let list = |v: &[String]| match v {
                [] => "none".to_string(),
                [a] => a.clone(),
                [a, ..] => format!("{a} and {} more", v.len() - 1),
            };
            bail!(
                "state dict does not match the model: unexpected {}; missing {} \
                 (strict=False loads a subset)",
                list(&report.unexpected),
                list(&report.missing)
            );
        }
        let values = updates
            .iter()
            .map(|(i, name)| {
                let v = w[*name].to_device(&self.device)?.to_dtype(self.dtype)?;
                Ok((*i, v.detach()))
            })
            .collect::<Result<Vec<_>>>()?;
        for (i, v) in values {
            let p = &mut self.params[i];
            p.value = v;
            p.var = None;
        }
        Ok(report)
    }

    /// The same weights (shared storage, so later in-place updates show through) with no
    /// autograd tracking: for generation and the probe, which need no graph.
    pub fn detached(&self) -> Self {
        let mut m = self.shallow_clone();
        for p in m.params.iter_mut() {
            p.value = p.value.detach();
            p.var = None;
        }
        m
    }

    /// An independent copy of the weights (e.g. a frozen reference model for a KL term).
    pub fn frozen_copy(&self) -> Result<Self> {
        let mut m = self.shallow_clone();
        for p in m.params.iter_mut() {
            p.value = p.value.copy()?.detach();
            p.var = None;
        }
        Ok(m)
    }

    fn shallow_clone(&self) -> Self {
        Transformer {
            cfg: self.cfg.clone(),
            params: self.params.clone(),
            index: self.index.clone(),
            layers: self.layers.to_vec(),
            embed: self.embed,
            final_norm: self.final_norm,
            lm_head: self.lm_head,
            cos: self.cos.clone(),
            sin: self.sin.clone(),
            dtype: self.dtype,
            device: self.device.clone(),
        }
    }

    /// A copy of the model in another dtype (e.g. f64 for finite-difference tests), all frozen.
    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        let params = self
            .params
            .iter()
            .map(|p| {
                Ok(Param {
                    name: p.name.clone(),
                    value: p.value.to_dtype(dtype)?.detach(),
                    var: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (cos, sin) = rope_tables(&self.cfg, dtype, &self.device)?;
        Ok(Transformer {
            cfg: self.cfg.clone(),
            params,
            index: self.index.clone(),
            layers: self.layers.to_vec(),
            embed: self.embed,
            final_norm: self.final_norm,
            lm_head: self.lm_head,
            cos,
            sin,
            dtype,
            device: self.device.clone(),
        })
    }

    /// Current weights under HF names (what `save` writes). Tied models carry no lm_head.
    pub fn weights(&self) -> Weights {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.value.detach()))
            .collect()
    }

    /// Read-only view of one layer's weights, for code that differentiates the model by hand
    /// (the fingerprint probe).
    pub fn layer_view(&self, l: usize) -> LayerView<'_> {
        let x = &self.layers[l];
        LayerView {
            input_norm: self.w(x.input_norm),
            q: self.w(x.q),
            k: self.w(x.k),
            v: self.w(x.v),
            o: self.w(x.o),
            q_bias: self.wo(x.q_bias),
            k_bias: self.wo(x.k_bias),
            v_bias: self.wo(x.v_bias),
            q_norm: self.wo(x.q_norm),
            k_norm: self.wo(x.k_norm),
            post_norm: self.w(x.post_norm),
            gate: self.w(x.gate),
            up: self.w(x.up),
            down: self.w(x.down),
        }
    }
    pub fn embed_weight(&self) -> &Tensor {
        self.w(self.embed)
    }
    pub fn final_norm_weight(&self) -> &Tensor {
        self.w(self.final_norm)
    }
    /// RoPE tables [max_pos, head_dim/2] (cos, sin) in the model dtype.
    pub fn rope_tables(&self) -> (&Tensor, &Tensor) {
        (&self.cos, &self.sin)
    }

    pub(crate) fn w(&self, i: usize) -> &Tensor {
        &self.params[i].value
    }
    fn wo(&self, i: Option<usize>) -> Option<&Tensor> {
        i.map(|i| &self.params[i].value)
    }

    /// The differentiable teacher-forced pass: hidden states after the final norm, [B, T, H].
    pub fn forward_hidden(&self, ids: &Tensor, attn: &AttnInput) -> Result<Tensor> {
        self.run(ids, attn, None, false)
    }

    /// Logits at every position, [B, T, V] (differentiable). `ids` is [B, T] u32; sequences of
    /// different lengths are right-padded (any pad id) and their padded positions ignored.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let attn = AttnInput::causal(b, t, self.dtype, &self.device)?;
        self.logits(&self.forward_hidden(ids, &attn)?)
    }

    /// Inference step with a KV cache (fused ops allowed): logits of the new tokens, [B, T, V].
    pub fn forward_cached(
        &self,
        ids: &Tensor,
        attn: &AttnInput,
        cache: &mut KvCache,
        last_only: bool,
    ) -> Result<Tensor> {
        let h = self.run(ids, attn, Some(cache), true)?;
        let h = if last_only {
            let t = h.dim(1)?;
            h.narrow(1, t - 1, 1)?
        } else {
            h
        };
        linear_any(&h, self.lm_head_weight(), None, true)
    }

    pub fn lm_head_weight(&self) -> &Tensor {
        self.w(self.lm_head.unwrap_or(self.embed))
    }

    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        linear(hidden, self.lm_head_weight(), None)
    }

    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, fused: bool) -> Result<Tensor> {
        // x: [B, heads, T, hd]; cos/sin: [B, T, hd/2]
        if fused {
            Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)?)
        } else {
            let cos = Tensor::cat(&[cos, cos], D::Minus1)?.unsqueeze(1)?;
            let sin = Tensor::cat(&[sin, sin], D::Minus1)?.unsqueeze(1)?;
            Ok((x.broadcast_mul(&cos)? + rotate_half(x)?.broadcast_mul(&sin)?)?)
        }
    }

    fn norm(&self, x: &Tensor, w: usize, fused: bool) -> Result<Tensor> {
        if fused && self.dtype != DType::F64 {
            Ok(candle_nn::ops::rms_norm(
                &x.contiguous()?,
                self.w(w),
                self.cfg.rms_norm_eps as f32,
            )?)
        } else {
            rms_norm_diff(x, self.w(w), self.cfg.rms_norm_eps)
        }
    }

    /// Decoding: q, k, v projections in one kernel pass (inference path, few rows only).
    fn qkv_decode(
        &self,
        x: &Tensor,
        l: &Layer,
        fused: bool,
    ) -> Result<Option<(Tensor, Tensor, Tensor)>> {
        let dims = x.dims().to_vec();
        let rows: usize = dims[..dims.len() - 1].iter().product();
        if !fused || rows > crate::kernels::MAX_ROWS {
            return Ok(None);
        }
        let x2 = x.reshape((rows, dims[dims.len() - 1]))?.contiguous()?;
        let ws = [self.w(l.q), self.w(l.k), self.w(l.v)];
        let Some(ys) = crate::kernels::small_matmul_t_multi(&x2, &ws)? else {
            return Ok(None);
        };
        let mut out = vec![];
        for ((y, w), bias) in ys.into_iter().zip(ws).zip([l.q_bias, l.k_bias, l.v_bias]) {
            let mut shape = dims.clone();
            *shape.last_mut().unwrap() = w.dim(0)?;
            let t = Tensor::from_vec(y, shape, x.device())?;
            out.push(match self.wo(bias) {
                Some(b) => t.broadcast_add(b)?,
                None => t,
            });
        }
        let v = out.pop().unwrap();
        let k = out.pop().unwrap();
        Ok(Some((out.pop().unwrap(), k, v)))
    }

    /// Decoding: silu(x W_gate^T) * (x W_up^T) in one kernel pass (inference path only).
    fn gate_up_decode(&self, x: &Tensor, l: &Layer, fused: bool) -> Result<Option<Tensor>> {
        let dims = x.dims().to_vec();
        let rows: usize = dims[..dims.len() - 1].iter().product();
        if !fused || rows > crate::kernels::MAX_ROWS {
            return Ok(None);
        }
        let x2 = x.reshape((rows, dims[dims.len() - 1]))?.contiguous()?;
        let Some(ys) = crate::kernels::small_matmul_t_multi(&x2, &[self.w(l.gate), self.w(l.up)])?
        else {
            return Ok(None);
        };
        // silu(g) = g * sigmoid(g), as candle computes it; with the vectorised exp the
        // training pass uses (a scalar exp per element is a visible share of a decode step).
        let mut gu = vec![0f32; ys[0].len()];
        crate::fastops::silu_mul_into(&ys[0], &ys[1], &mut gu);
        let mut shape = dims.clone();
        *shape.last_mut().unwrap() = self.cfg.intermediate_size;
        Ok(Some(Tensor::from_vec(gu, shape, x.device())?))
    }

    /// Softmax attention [B, nh, T, hd] x [B, nkv, S, hd] -> [B, T, nh * hd].
    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        fused: bool,
        scale: f64,
    ) -> Result<Tensor> {
        let (b, nh, t, hd) = q.dims4()?;
        let (nkv, s) = (k.dim(1)?, k.dim(2)?);
        let n_rep = nh / nkv;
        // Grouped-query attention without copying k/v: the n_rep query heads that share a
        // kv head are stacked along the query axis.
        let qg = q.contiguous()?.reshape((b, nkv, n_rep * t, hd))?;
        let scores = (qg.matmul(&k.t()?)? * scale)?.reshape((b, nkv, n_rep, t, s))?;
        let scores = scores.broadcast_add(&mask.unsqueeze(1)?)?;
        let probs = if fused {
            candle_nn::ops::softmax_last_dim(&scores.contiguous()?)?
        } else if matches!(scores.dtype(), DType::BF16 | DType::F16) {
            // The softmax in f32, as transformers computes it for half-precision models.
            candle_nn::ops::softmax(&scores.to_dtype(DType::F32)?, D::Minus1)?
                .to_dtype(scores.dtype())?
        } else {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        };
        Ok(probs
            .reshape((b, nkv, n_rep * t, s))?
            .matmul(&v.contiguous()?)?
            .reshape((b, nh, t, hd))?
            .transpose(1, 2)?
            .reshape((b, t, nh * hd))?)
    }

    fn run(
        &self,
        ids: &Tensor,
        attn: &AttnInput,
        cache: Option<&mut KvCache>,
        fused: bool,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (b, t) = ids.dims2()?;
        let hd = cfg.head_dim;
        let max_pos = self.cos.dim(0)?;
        let pos = attn.positions.flatten_all()?;
        let pmax: u32 = pos.max(0)?.to_scalar()?;
        if pmax as usize >= max_pos {
            bail!("position {pmax} is beyond the model's rope table ({max_pos} positions)");
        }
        let cos = self.cos.index_select(&pos, 0)?.reshape((b, t, hd / 2))?;
        let sin = self.sin.index_select(&pos, 0)?.reshape((b, t, hd / 2))?;
        let scale = 1.0 / (hd as f64).sqrt();

        let mut h = self
            .w(self.embed)
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, cfg.hidden_size))?;
        let mut ops = Infer {
            m: self,
            cache,
            fused,
            mask: &attn.mask,
            cos,
            sin,
            b,
            t,
            scale,
        };
        for (li, l) in self.layers.iter().enumerate() {
            h = layer::layer(&mut ops, li, l, h)?;
        }
        if let Some(c) = ops.cache {
            c.len += t;
        }
        self.norm(&h, self.final_norm, fused)
    }
}

/// The layer's ops over batched rows [B, T, ..]: with `fused`, the decode kernels, candle's
/// fused ops and the KV cache (inference); without, candle ops that autograd records.
struct Infer<'a> {
    m: &'a Transformer,
    cache: Option<&'a mut KvCache>,
    fused: bool,
    mask: &'a Tensor,
    /// Rotary tables at the rows' positions [B, T, hd/2].
    cos: Tensor,
    sin: Tensor,
    b: usize,
    t: usize,
    scale: f64,
}

impl layer::LayerOps for Infer<'_> {
    fn norm(&mut self, x: &Tensor, w: usize, _at: layer::NormAt) -> Result<Tensor> {
        self.m.norm(x, w, self.fused)
    }

    fn qkv(&mut self, x: &Tensor, l: &Layer) -> Result<(Tensor, Tensor, Tensor)> {
        let (m, f) = (self.m, self.fused);
        let (q, k, v) = match m.qkv_decode(x, l, f)? {
            Some(qkv) => qkv,
            None => (
                linear_any(x, m.w(l.q), m.wo(l.q_bias), f)?,
                linear_any(x, m.w(l.k), m.wo(l.k_bias), f)?,
                linear_any(x, m.w(l.v), m.wo(l.v_bias), f)?,
            ),
        };
        let (nh, nkv, hd) = (m.cfg.num_heads, m.cfg.num_kv_heads, m.cfg.head_dim);
        let (b, t) = (self.b, self.t);
        Ok((
            q.reshape((b, t, nh, hd))?,
            k.reshape((b, t, nkv, hd))?,
            v.reshape((b, t, nkv, hd))?,
        ))
    }

    fn rope(&mut self, q: Tensor, k: Tensor) -> Result<(Tensor, Tensor)> {
        let (m, f) = (self.m, self.fused);
        Ok((
            m.rope(&q.transpose(1, 2)?, &self.cos, &self.sin, f)?,
            m.rope(&k.transpose(1, 2)?, &self.cos, &self.sin, f)?,
        ))
    }

    fn attend(&mut self, li: usize, q: Tensor, k: Tensor, v: Tensor) -> Result<Tensor> {
        let v = v.transpose(1, 2)?;
        let (k, v) = match self.cache.as_deref_mut() {
            Some(c) => {
                let kv = c.kv[li].as_mut().context("kv cache layer missing")?;
                kv.append(&k.contiguous()?, &v.contiguous()?)?
            }
            None => (k, v),
        };
        let (b, t) = (self.b, self.t);
        let nh_hd = self.m.cfg.num_heads * self.m.cfg.head_dim;
        let fast = if self.fused && t == 1 {
            crate::kernels::decode_attention(
                &q.contiguous()?,
                &k,
                &v,
                self.mask,
                self.scale as f32,
            )?
        } else {
            None
        };
        match fast {
            Some(c) => Ok(c.reshape((b, t, nh_hd))?),
            None => self
                .m
                .attention(&q, &k, &v, self.mask, self.fused, self.scale),
        }
    }

    fn linear(&mut self, x: &Tensor, w: usize) -> Result<Tensor> {
        linear_any(x, self.m.w(w), None, self.fused)
    }

    fn gated(&mut self, x: &Tensor, l: &Layer) -> Result<Tensor> {
        let (m, f) = (self.m, self.fused);
        if let Some(gu) = m.gate_up_decode(x, l, f)? {
            return Ok(gu);
        }
        let g = candle_nn::Activation::Silu.forward(&linear_any(x, m.w(l.gate), None, f)?)?;
        Ok((g * linear_any(x, m.w(l.up), None, f)?)?)
    }
}

fn rope_tables(cfg: &ModelConfig, dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
    let inv = cfg.rope_inv_freq();
    let n = cfg.max_position_embeddings.clamp(4096, 131_072);
    let mut cos = Vec::with_capacity(n * inv.len());
    let mut sin = Vec::with_capacity(n * inv.len());
    for p in 0..n {
        for f in &inv {
            let a = p as f64 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    let d = inv.len();
    Ok((
        Tensor::from_vec(cos, (n, d), device)?.to_dtype(dtype)?,
        Tensor::from_vec(sin, (n, d), device)?.to_dtype(dtype)?,
    ))
}
