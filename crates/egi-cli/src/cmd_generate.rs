//! `egi generate`: sample completions of one prompt.

use anyhow::Result;
use egi_generate::{generate_with_progress, Completion, Request, SamplingParams};
use egi_model::chat::ChatMessage;

#[derive(clap::Args)]
pub struct Args {
    /// Model: GGUF file, HF directory, `default`, or hub id.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// The prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt in the model's chat template as one user message.
    #[arg(long)]
    pub chat: bool,
    /// Optional system message (with --chat).
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// 0 = greedy. Default: the checkpoint's generation_config, else 1.0.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass (1 = off). Default: the checkpoint's, else 1.0.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Keep only the k most likely tokens (0 = off).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Seed of the first completion; completion i uses seed + i.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of completions, sampled as one batch.
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Stop when the text contains this string (repeatable); the text is cut before it.
    #[arg(long)]
    pub stop: Vec<String>,
    /// Print one JSON object per completion (text, token_ids, logprobs, finish_reason).
    #[arg(long)]
    pub json: bool,
}

/// The prompt as generation starts from it: rendered with the chat template (an optional
/// system message, then `prompt` as the user's) when `chat`, else as it is with the
/// tokenizer's BOS if it wants one.
pub fn prompt_ids(
    tok: &egi_model::Tokenizer,
    prompt: &str,
    chat: bool,
    system: Option<&str>,
) -> Result<Vec<u32>> {
    let Some(system) = system.filter(|_| chat) else {
        return egi_model::text::encode_prompt(tok, prompt, !chat);
    };
    let msgs = [ChatMessage::system(system), ChatMessage::user(prompt)];
    tok.encode(&tok.apply_chat_template(&msgs, true)?, false)
}

/// Sampling settings: each one given, else the checkpoint's generation_config, else egi's
/// default (temperature 1, top-p 1, top-k off).
pub fn sampling_params(
    m: &egi_model::GenerationDefaults,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<usize>,
    max_new_tokens: usize,
    stop: Vec<String>,
) -> SamplingParams {
    SamplingParams {
        temperature: temperature.or(m.temperature).unwrap_or(1.0),
        top_p: top_p.or(m.top_p).unwrap_or(1.0),
        top_k: top_k.or(m.top_k).unwrap_or(0),
        max_new_tokens,
        stop,
        seed: 0,
    }
}

/// `n` requests (at least one) for one prompt; completion i uses seed `seed + i`.
pub fn requests(ids: &[u32], params: &SamplingParams, seed: u64, n: usize) -> Vec<Request> {
    (0..n.max(1))
        .map(|i| Request {
            prompt_ids: ids.to_vec(),
            params: SamplingParams {
                seed: seed + i as u64,
                ..params.clone()
            },
        })
        .collect()
}

/// One completion as `--json` prints it.
pub fn completion_record(index: usize, seed: u64, c: &Completion) -> serde_json::Value {
    serde_json::json!({
        "index": index,
        "seed": seed,
        "text": c.text,
        "token_ids": c.token_ids,
        "logprobs": c.logprobs,
        "finish_reason": c.finish_reason,
    })
}

pub fn run(a: Args) -> Result<()> {
    let m = crate::common::load_model(&a.model)?;
    let tok = m.tokenizer()?;
    let ids = prompt_ids(tok, &a.prompt, a.chat, a.system.as_deref())?;
    let params = sampling_params(
        &m.generation,
        a.temperature,
        a.top_p,
        a.top_k,
        a.max_new_tokens,
        a.stop.clone(),
    );
    let reqs = requests(&ids, &params, a.seed, a.n);
    let pb = crate::common::progress((a.max_new_tokens * reqs.len()) as u64, "tokens");
    let t = std::time::Instant::now();
    let out = generate_with_progress(&m.model, tok, &m.eos_ids(), &reqs, &mut |n| {
        pb.inc(n as u64)
    })?;
    pb.finish_and_clear();
    let n_tok: usize = out.iter().map(|c| c.token_ids.len()).sum();
    tracing::info!(
        "{n_tok} tokens in {:.2}s ({:.1} tok/s)",
        t.elapsed().as_secs_f64(),
        n_tok as f64 / t.elapsed().as_secs_f64()
    );
    for (i, c) in out.iter().enumerate() {
        if a.json {
            println!("{}", completion_record(i, reqs[i].params.seed, c));
        } else {
            if a.n > 1 {
                println!(
                    "--- completion {i} (seed {}, {:?}) ---",
                    reqs[i].params.seed, c.finish_reason
                );
            }
            println!("{}", c.text);
        }
    }
    Ok(())
}
