//! `egi bench`'s runtime figures for one model: prefill, decode at batch 1 and batch B, and a
//! forward+backward over all parameters, beside the device's copy bandwidth and matmul rate
//! ([`egi_model::bench`]) and the decode bound the bandwidth sets (all weights are read once
//! per decoding step). Every figure is measured in the call.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use candle_core::Tensor;
use egi_model::bench::{copy_bandwidth, matmul_rate, median};
use egi_model::LoadedModel;
use serde::Serialize;

use crate::{generate, Request, SamplingParams};

/// The sizes measured.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Prompt length for prefill and for forward+backward.
    pub tokens: usize,
    /// Tokens generated per sequence in the decode measurements.
    pub new_tokens: usize,
    /// Batch size of the batched decode measurement.
    pub batch: usize,
    /// Repetitions; every figure is their median.
    pub reps: usize,
}

/// The runtime figures; serialized with the field names of `egi bench --json`.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeBench {
    /// The checkpoint measured.
    pub model: PathBuf,
    /// candle's thread count.
    pub threads: usize,
    /// Memory copy bandwidth, GB/s (bytes read + written).
    pub copy_gb_s: f64,
    /// Matmul rate in the model's dtype, GFLOP/s.
    pub matmul_gflop_s: f64,
    /// Side of the square matrices of the matmul measurement.
    pub matmul_n: usize,
    /// `cpu`, `cuda:0`, ...
    pub device: String,
    /// Prompt tokens per second of one cached forward.
    pub prefill_tok_s: f64,
    /// Generated tokens per second, one sequence.
    pub decode_b1_tok_s: f64,
    /// Sequences of the batched decode measurement.
    pub decode_batch: usize,
    /// Generated tokens per second over all sequences of the batch.
    pub decode_batch_tok_s: f64,
    /// Decoding steps per second that reading every weight once per step at the measured
    /// bandwidth allows.
    pub decode_bound_steps_s: f64,
    /// Seconds of one forward+backward over `tokens` tokens, every parameter trainable.
    pub fwd_bwd_s: f64,
    // For the table only:
    /// The model's layers.
    #[serde(skip)]
    pub layers: usize,
    /// The model's hidden size.
    #[serde(skip)]
    pub hidden: usize,
    /// Parameters, body + embedding (a tied LM head counted once).
    #[serde(skip)]
    pub params: usize,
    /// The dtype as `{:?}` writes it (`F32`, `BF16`).
    #[serde(skip)]
    pub dtype: String,
    /// Prompt length of the prefill and forward+backward measurements.
    #[serde(skip)]
    pub tokens: usize,
}

/// Measures `m`'s runtime. Leaves every parameter of `m.model` trainable (the
/// forward+backward needs them so).
pub fn runtime(m: &mut LoadedModel, o: &RuntimeOptions) -> Result<RuntimeBench> {
    let tok = m.tokenizer()?.clone();
    let eos: Vec<u32> = vec![]; // never stop early: every request decodes exactly new_tokens
    let cfg = m.model.cfg.clone();
    let (body, emb) = cfg.n_params();
    let threads = candle_core::utils::get_num_threads();
    let dev = m.model.device().clone();
    let bw = copy_bandwidth(&dev)?;
    let mm = matmul_rate(&dev, m.model.dtype())?;
    // Prompt: real text, repeated to the requested length.
    let base = tok.encode(
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May? ",
        false,
    )?;
    let prompt: Vec<u32> = base.iter().cycle().take(o.tokens).cloned().collect();

    // Prefill: one cached forward over the prompt, last-position logits.
    let mut t_prefill = vec![];
    for _ in 0..o.reps {
        let t = Instant::now();
        let req = Request {
            prompt_ids: prompt.clone(),
            params: SamplingParams {
                temperature: 0.0,
                max_new_tokens: 1,
                ..Default::default()
            },
        };
        generate(&m.model, &tok, &eos, &[req])?;
        t_prefill.push(t.elapsed().as_secs_f64());
    }
    let prefill = o.tokens as f64 / median(t_prefill);

    // Decode: time to generate new_tokens minus the one-token (prefill) time.
    let short: Vec<u32> = prompt[..32.min(prompt.len())].to_vec();
    let decode = |batch: usize| -> Result<f64> {
        let reqs: Vec<Request> = (0..batch)
            .map(|i| Request {
                prompt_ids: short.clone(),
                params: SamplingParams {
                    temperature: 0.7,
                    top_p: 0.95,
                    max_new_tokens: o.new_tokens,
                    seed: i as u64,
                    ..Default::default()
                },
            })
            .collect();
        let one: Vec<Request> = reqs
            .iter()
            .map(|r| Request {
                params: SamplingParams {
                    max_new_tokens: 1,
                    ..r.params.clone()
                },
                ..r.clone()
            })
            .collect();
        let mut rates = vec![];
        for _ in 0..o.reps {
            let t = Instant::now();
            generate(&m.model, &tok, &eos, &one)?;
            let t1 = t.elapsed().as_secs_f64();
            let t = Instant::now();
            generate(&m.model, &tok, &eos, &reqs)?;
            let tn = t.elapsed().as_secs_f64();
            rates.push((batch * (o.new_tokens - 1)) as f64 / (tn - t1).max(1e-9));
        }
        Ok(median(rates))
    };
    let d1 = decode(1)?;
    let db = decode(o.batch)?;

    // Forward + backward over `tokens` tokens, every parameter trainable, loss = -sum log p.
    m.model.set_trainable(|_| true)?;
    let ids = Tensor::new(prompt.as_slice(), &dev)?.unsqueeze(0)?;
    let mut t_fb = vec![];
    for _ in 0..o.reps {
        let t = Instant::now();
        let attn = egi_model::AttnInput::causal(1, o.tokens - 1, m.model.dtype(), &dev)?;
        let h = m
            .model
            .forward_hidden(&ids.narrow(1, 0, o.tokens - 1)?, &attn)?
            .squeeze(0)?;
        let (lp, _) = egi_model::pass::head::logprobs(
            &m.model,
            &h,
            &ids.narrow(1, 1, o.tokens - 1)?.squeeze(0)?,
            128,
        )?;
        let grads = lp.sum_all()?.neg()?.backward()?;
        dev.synchronize()?; // a GPU returns before its kernels finish
        std::hint::black_box(grads);
        t_fb.push(t.elapsed().as_secs_f64());
    }
    let fb = median(t_fb);

    let bytes_per_step = ((body + emb) * m.model.dtype().size_in_bytes()) as f64; // tied lm_head counted once
    Ok(RuntimeBench {
        model: m.source.path().to_path_buf(),
        threads,
        copy_gb_s: bw,
        matmul_gflop_s: mm.gflop_s,
        matmul_n: mm.n,
        device: egi_model::device_name(&dev),
        prefill_tok_s: prefill,
        decode_b1_tok_s: d1,
        decode_batch: o.batch,
        decode_batch_tok_s: db,
        decode_bound_steps_s: bw * 1e9 / bytes_per_step,
        fwd_bwd_s: fb,
        layers: cfg.num_layers,
        hidden: cfg.hidden_size,
        params: body + emb,
        dtype: format!("{:?}", m.model.dtype()),
        tokens: o.tokens,
    })
}

impl RuntimeBench {
    /// The figures as a header line and a markdown table (no final newline).
    pub fn table(&self) -> String {
        let r = self;
        [
            format!(
                "egi bench: {} ({} layers, hidden {}, {:.1}M params), {} on {}, {} threads",
                r.model.display(),
                r.layers,
                r.hidden,
                r.params as f64 / 1e6,
                r.dtype,
                r.device,
                r.threads,
            ),
            "| measurement | value |".into(),
            "|---|---|".into(),
            format!("| memory copy bandwidth | {:.1} GB/s |", r.copy_gb_s),
            format!(
                "| {} matmul {}^3 | {:.1} GFLOP/s |",
                r.dtype, r.matmul_n, r.matmul_gflop_s
            ),
            format!(
                "| prefill ({} tokens) | {:.0} tokens/s |",
                r.tokens, r.prefill_tok_s
            ),
            format!("| decode, batch 1 | {:.1} tokens/s |", r.decode_b1_tok_s),
            format!(
                "| decode, batch {} | {:.1} tokens/s ({:.1}x batch 1) |",
                r.decode_batch,
                r.decode_batch_tok_s,
                r.decode_batch_tok_s / r.decode_b1_tok_s
            ),
            format!(
                "| decode bound from bandwidth (weights read per step) | {:.1} steps/s |",
                r.decode_bound_steps_s
            ),
            format!(
                "| forward+backward, {} tokens, all params | {:.2} s |",
                r.tokens, r.fwd_bwd_s
            ),
        ]
        .join("\n")
    }
}
