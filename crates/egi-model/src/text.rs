//! Prompt + response tokenization, shared by scoring, the probe and RL.
//!
//! As in the reference fixtures: the full text (prompt text + response) is tokenized in one
//! go, `n_prompt` is the token count of the prompt text alone, and the response tokens are
//! positions `n_prompt..`. Each response token knows the character where it starts.

use anyhow::{bail, Result};

use crate::chat::ChatMessage;
use crate::tokenizer::Tokenizer;

#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPair {
    pub prompt_text: String,
    pub ids: Vec<u32>,
    pub n_prompt: usize,
    /// For each response token (positions n_prompt..), the character offset (Unicode scalar
    /// values, as Python counts) of its first character inside the response; 0 for a token
    /// that straddles the prompt/response boundary.
    pub char_starts: Vec<usize>,
}

/// The prompt as the model sees it: rendered with the chat template (one user message,
/// generation prompt added) unless `raw`.
pub fn render_prompt(tok: &Tokenizer, prompt: &str, raw: bool) -> Result<String> {
    if raw {
        return Ok(prompt.to_string());
    }
    tok.apply_chat_template(&[ChatMessage::user(prompt)], true)
}

/// [`render_prompt`], tokenized: the prompt ids generation starts from (a raw prompt gets
/// the tokenizer's BOS if it wants one; a template writes its own).
pub fn encode_prompt(tok: &Tokenizer, prompt: &str, raw: bool) -> Result<Vec<u32>> {
    tok.encode(&render_prompt(tok, prompt, raw)?, raw)
}

/// Render `prompt` with the chat template (one user message, generation prompt added) unless
/// `raw`, then tokenize prompt and response.
pub fn encode_pair(
    tok: &Tokenizer,
    prompt: &str,
    response: &str,
    raw: bool,
) -> Result<EncodedPair> {
    let prompt_text = render_prompt(tok, prompt, raw)?;
    // Raw prompts get the tokenizer's BOS if it wants one; templates write their own.
    let bos = raw && tok.add_bos;
    let full = format!("{prompt_text}{response}");
    let (mut ids, mut offsets) = tok.encode_with_offsets(&full)?;
    let mut n_prompt = tok.encode(&prompt_text, false)?.len();
    if bos {
        if let Some(b) = tok.bos_id {
            ids.insert(0, b);
            offsets.insert(0, (0, 0));
            n_prompt += 1;
        }
    }
    if n_prompt >= ids.len() {
        bail!("the response adds no tokens after the prompt");
    }
    let start = prompt_text.len();
    let char_starts = offsets[n_prompt..]
        .iter()
        .map(|&(s, _)| {
            if s <= start {
                0
            } else {
                full[start..s].chars().count()
            }
        })
        .collect();
    Ok(EncodedPair {
        prompt_text,
        ids,
        n_prompt,
        char_starts,
    })
}
