//! Batched sampling with a KV cache.
//!
//! Prompts of different lengths are left-padded into one batch; the attention mask hides the
//! pads and rotary positions skip them, so each row computes what it would alone. Rows that
//! finish (EOS, stop string, length) leave the batch, and the cache shrinks with them.

use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use egi_model::{AttnInput, KvCache, Tokenizer, Transformer};

use crate::sampling::{sample, SamplingParams};

#[derive(Debug, Clone)]
pub struct Request {
    pub prompt_ids: Vec<u32>,
    pub params: SamplingParams,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    Eos,
    Stop,
    Length,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Completion {
    /// Generated ids, including the EOS token or the token that completed a stop string.
    pub token_ids: Vec<u32>,
    /// Decoded text, without EOS and cut before a stop string.
    pub text: String,
    /// log p(token) under the model (temperature 1), one per generated id.
    pub logprobs: Vec<f64>,
    pub finish_reason: FinishReason,
}

struct Row {
    req: usize,
    pad: usize,
    rng: ChaCha8Rng,
    out: Vec<u32>,
    logprobs: Vec<f64>,
}

/// Generate completions for all requests in one batch.
pub fn generate(
    model: &Transformer,
    tok: &Tokenizer,
    eos_ids: &[u32],
    requests: &[Request],
) -> Result<Vec<Completion>> {
    generate_with_progress(model, tok, eos_ids, requests, &mut |_| {})
}

/// As [`generate`], calling `on_token(n)` after each decoding step with the number of tokens
/// produced in that step (for progress bars).
pub fn generate_with_progress(
    model: &Transformer,
    tok: &Tokenizer,
    eos_ids: &[u32],
    requests: &[Request],
    on_token: &mut dyn FnMut(usize),
) -> Result<Vec<Completion>> {
    generate_ids(
        model,
        &|ids| tok.decode(ids, true),
        eos_ids,
        requests,
        on_token,
    )
}

/// As [`generate_with_progress`], with any detokenizer (`decode` turns generated ids, special
/// tokens skipped, into text): token-level tasks and tests use models without a tokenizer.
///
/// Requests with identical prompts (a GRPO group, `eval --n`) share one prefill: the prompt
/// runs once and its cache rows are copied.
pub fn generate_ids(
    model: &Transformer,
    decode: &(dyn Fn(&[u32]) -> Result<String> + Sync),
    eos_ids: &[u32],
    requests: &[Request],
    on_token: &mut dyn FnMut(usize),
) -> Result<Vec<Completion>> {
    let mut done: Vec<Option<Completion>> = vec![None; requests.len()];
    if requests.is_empty() {
        return Ok(vec![]);
    }
    let dev = model.device();
    let max_prompt = requests
        .iter()
        .map(|r| r.prompt_ids.len())
        .max()
        .unwrap_or(0);
    let max_new = requests
        .iter()
        .map(|r| r.params.max_new_tokens)
        .max()
        .unwrap_or(0);
    for (i, r) in requests.iter().enumerate() {
        if r.prompt_ids.is_empty() {
            anyhow::bail!("request {i}: empty prompt");
        }
        if r.params.max_new_tokens == 0 {
            done[i] = Some(Completion {
                token_ids: vec![],
                text: String::new(),
                logprobs: vec![],
                finish_reason: FinishReason::Length,
            });
        }
    }
    let ctx = max_prompt + max_new;
    if ctx > model.cfg.max_position_embeddings {
        tracing::warn!(
            "prompt + max_new_tokens = {ctx} exceeds the model's context ({})",
            model.cfg.max_position_embeddings
        );
    }
    let mut rows: Vec<Row> = requests
        .iter()
        .enumerate()
        .filter(|(i, _)| done[*i].is_none())
        .map(|(i, r)| Row {
            req: i,
            pad: max_prompt - r.prompt_ids.len(),
            rng: ChaCha8Rng::seed_from_u64(r.params.seed),
            out: vec![],
            logprobs: vec![],
        })
        .collect();
    if rows.is_empty() {
        return Ok(done.into_iter().map(|c| c.unwrap()).collect());
    }
    let mut cache = KvCache::new(model.cfg.num_layers, ctx);
    // Prefill: each distinct prompt once, then its cache rows and logits copied to every row
    // that shares it.
    let mut uniq: Vec<usize> = vec![]; // row index of each distinct prompt's first row
    let mut row_to_uniq = Vec::with_capacity(rows.len());
    for r in &rows {
        let p = &requests[r.req].prompt_ids;
        match uniq
            .iter()
            .position(|&u| requests[rows[u].req].prompt_ids == *p)
        {
            Some(u) => row_to_uniq.push(u as u32),
            None => {
                row_to_uniq.push(uniq.len() as u32);
                uniq.push(row_to_uniq.len() - 1);
            }
        }
    }
    let mut ids = Vec::with_capacity(uniq.len() * max_prompt);
    for &u in &uniq {
        let r = &rows[u];
        ids.extend(std::iter::repeat_n(0u32, r.pad));
        ids.extend(&requests[r.req].prompt_ids);
    }
    let pads: Vec<usize> = uniq.iter().map(|&u| rows[u].pad).collect();
    let input = Tensor::from_vec(ids, (uniq.len(), max_prompt), dev)?;
    let attn = AttnInput::left_padded(&pads, 0, max_prompt, model.dtype(), dev)?;
    let t0 = std::time::Instant::now();
    let mut logits = model.forward_cached(&input, &attn, &mut cache, true)?;
    if uniq.len() < rows.len() {
        let sel = Tensor::new(row_to_uniq.as_slice(), dev)?;
        cache.select_rows(&sel)?;
        logits = logits.index_select(&sel, 0)?;
    }
    let (mut t_fwd, mut t_sample, mut steps) = (t0.elapsed().as_secs_f64(), 0f64, 0usize);
    loop {
        let ts = std::time::Instant::now();
        let rows_logits: Vec<Vec<f32>> = logits
            .squeeze(1)?
            .to_dtype(DType::F32)?
            .to_vec2()
            .context("reading logits")?;
        // Sampling is independent per row (each has its own random stream): rows in parallel.
        let picked: Vec<(u32, f64)> = rows
            .par_iter_mut()
            .zip(&rows_logits)
            .map(|(row, l)| sample(l, &requests[row.req].params, &mut row.rng))
            .collect();
        let mut next = Vec::with_capacity(rows.len());
        let mut keep = Vec::with_capacity(rows.len());
        for (k, (row, (id, lp))) in rows.iter_mut().zip(picked).enumerate() {
            let p = &requests[row.req].params;
            row.out.push(id);
            row.logprobs.push(lp);
            let finish = if eos_ids.contains(&id) {
                Some(FinishReason::Eos)
            } else if !p.stop.is_empty() && {
                let text = decode(&row.out)?;
                p.stop.iter().any(|s| text.contains(s.as_str()))
            } {
                Some(FinishReason::Stop)
            } else if row.out.len() >= p.max_new_tokens {
                Some(FinishReason::Length)
            } else {
                None
            };
            match finish {
                Some(f) => done[row.req] = Some(finish_row(decode, row, p, f)?),
                None => {
                    keep.push(k as u32);
                    next.push(id);
                }
            }
        }
        on_token(rows.len());
        t_sample += ts.elapsed().as_secs_f64();
        steps += 1;
        if keep.is_empty() {
            break;
        }
        if keep.len() < rows.len() {
            let sel = Tensor::new(keep.as_slice(), dev)?;
            cache.select_rows(&sel)?;
            let mut k = 0;
            rows.retain(|_| {
                let r = keep.contains(&k);
                k += 1;
                r
            });
        }
        let pads: Vec<usize> = rows.iter().map(|r| r.pad).collect();
        let input = Tensor::from_vec(next, (rows.len(), 1), dev)?;
        let attn = AttnInput::left_padded(&pads, cache.len(), 1, model.dtype(), dev)?;
        let tf = std::time::Instant::now();
        logits = model.forward_cached(&input, &attn, &mut cache, true)?;
        t_fwd += tf.elapsed().as_secs_f64();
    }
    tracing::debug!(
        "generate: {steps} steps, {:.1} ms/step in the model, {:.1} ms/step sampling",
        1e3 * t_fwd / steps as f64,
        1e3 * t_sample / steps as f64
    );
    Ok(done
        .into_iter()
        .map(|c| c.expect("every request finishes"))
        .collect())
}

fn finish_row(
    decode: &(dyn Fn(&[u32]) -> Result<String> + Sync),
    row: &Row,
    p: &SamplingParams,
    f: FinishReason,
) -> Result<Completion> {
    let body: &[u32] = if f == FinishReason::Eos {
        &row.out[..row.out.len() - 1]
    } else {
        &row.out
    };
    let mut text = decode(body)?;
    if f == FinishReason::Stop {
        if let Some(cut) = p.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(cut);
        }
    }
    Ok(Completion {
        token_ids: row.out.clone(),
        text,
        logprobs: row.logprobs.clone(),
        finish_reason: f,
    })
}
