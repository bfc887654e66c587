//! `egi score`: per-token log-probabilities and entropies of given responses.

use std::path::PathBuf;

use anyhow::{Context, Result};
use egi_model::score::score_ids;
use egi_model::text::encode_pair;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "default")]
    pub model: String,
    /// JSONL, one {"id", "prompt", "response"} per line.
    #[arg(long)]
    pub input: PathBuf,
    /// JSONL written atomically: per response its tokens (pos, id, text, logit, logprob,
    /// entropy), total_logprob, mean_logprob and perplexity.
    #[arg(long)]
    pub out: PathBuf,
    /// Use the prompt text as is instead of the chat template.
    #[arg(long)]
    pub raw: bool,
}

/// One response's record as `egi score` writes it (and the Python package's
/// `Model.score` returns): per response token its id, text, logit, logprob and entropy;
/// total and mean logprob, perplexity.
pub fn score_record(
    model: &egi_model::Transformer,
    tok: &egi_model::Tokenizer,
    id: &serde_json::Value,
    prompt: &str,
    response: &str,
    raw: bool,
) -> Result<serde_json::Value> {
    let enc = encode_pair(tok, prompt, response, raw)?;
    let scores = score_ids(model, &enc.ids, enc.n_prompt)?;
    let total: f64 = scores.iter().map(|s| s.logprob).sum();
    let n = scores.len();
    let tokens: Vec<_> = scores
        .iter()
        .zip(&enc.char_starts)
        .map(|(s, c)| {
            Ok(json!({
                "pos": s.pos, "id": s.id, "text": tok.decode(&[s.id], false)?,
                "char_start": c, "logit": s.logit, "logprob": s.logprob, "entropy": s.entropy,
            }))
        })
        .collect::<Result<_>>()?;
    Ok(json!({
        "id": id,
        "n_prompt": enc.n_prompt,
        "n_tokens": n,
        "total_logprob": total,
        "mean_logprob": total / n as f64,
        "perplexity": (-total / n as f64).exp(),
        "tokens": tokens,
    }))
}

pub fn run(a: Args) -> Result<()> {
    let lines = egi_eval::data::read_response_lines(&a.input, "plain")?;
    let m = crate::common::load_model(&a.model)?;
    let tok = m.tokenizer()?;
    let pb = crate::common::progress(lines.len() as u64, "responses");
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let v = score_record(&m.model, tok, &l.id, &l.prompt, &l.response, a.raw)
            .with_context(|| format!("{}:{} (id {})", a.input.display(), i + 1, l.id))?;
        out.push_str(&serde_json::to_string(&v)?);
        out.push('\n');
        pb.inc(1);
    }
    pb.finish_and_clear();
    crate::common::write_atomic(&a.out, out.as_bytes())?;
    eprintln!("scored {} responses -> {}", lines.len(), a.out.display());
    Ok(())
}
