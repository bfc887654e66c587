//! `egi generate`: sample completions of one prompt.

use anyhow::Result;
use egi_generate::{generate_with_progress, Request, SamplingParams};
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

pub fn run(a: Args) -> Result<()> {
    let m = crate::common::load_model(&a.model)?;
    let tok = m.tokenizer()?;
    let text = if a.chat {
        let mut msgs = vec![];
        if let Some(s) = &a.system {
            msgs.push(ChatMessage {
                role: "system".into(),
                content: s.clone(),
            });
        }
        msgs.push(ChatMessage {
            role: "user".into(),
            content: a.prompt.clone(),
        });
        tok.apply_chat_template(&msgs, true)?
    } else {
        a.prompt.clone()
    };
    let ids = tok.encode(&text, !a.chat)?;
    let params = SamplingParams {
        temperature: a.temperature.or(m.generation.temperature).unwrap_or(1.0),
        top_p: a.top_p.or(m.generation.top_p).unwrap_or(1.0),
        top_k: a.top_k.or(m.generation.top_k).unwrap_or(0),
        max_new_tokens: a.max_new_tokens,
        stop: a.stop.clone(),
        seed: a.seed,
    };
    let reqs: Vec<Request> = (0..a.n.max(1))
        .map(|i| Request {
            prompt_ids: ids.clone(),
            params: SamplingParams {
                seed: a.seed + i as u64,
                ..params.clone()
            },
        })
        .collect();
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
            let v = serde_json::json!({
                "index": i,
                "seed": reqs[i].params.seed,
                "text": c.text,
                "token_ids": c.token_ids,
                "logprobs": c.logprobs,
                "finish_reason": c.finish_reason,
            });
            println!("{v}");
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
