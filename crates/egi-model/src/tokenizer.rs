//! Tokenizers from a Hugging Face directory (tokenizer.json + config files) or from GGUF
//! metadata, with the special tokens and chat template that go with them.
//!
//! GGUF files carry a byte-level BPE tokenizer as plain arrays (tokens, merges, token types)
//! plus a pre-tokenizer name (`tokenizer.ggml.pre`); [`Tokenizer::from_gguf`] rebuilds the
//! `tokenizers` pipeline that name stands for in llama.cpp and in the model's original
//! tokenizer.json. transformers 5 builds the same thing from a GGUF (a GPT-2 byte-level BPE
//! with the split regex of the named pre-tokenizer, control tokens special, user-defined ones
//! plain added tokens), so ids match what it computes.

use std::fmt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file;
use serde_json::Value as Json;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::template::{SpecialToken, TemplateProcessing};
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

pub use crate::chat::ChatMessage;
use crate::chat::{render_chat_template, TemplateTokens};

/// `(start, end)` byte offsets of a token inside the encoded text.
pub type ByteSpan = (usize, usize);

/// A tokenizer plus what generation and chat formatting need to know about it.
#[derive(Clone)]
pub struct Tokenizer {
    pub inner: tokenizers::Tokenizer,
    pub bos_token: Option<String>,
    pub bos_id: Option<u32>,
    pub eos_token: Option<String>,
    /// Every id that ends generation (eos, end-of-turn, generation_config's extra ids).
    pub eos_ids: Vec<u32>,
    pub pad_token: Option<String>,
    pub pad_id: Option<u32>,
    /// Prepend BOS when encoding raw text with `add_special = true`.
    pub add_bos: bool,
    pub chat_template: Option<String>,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &(self.bos_token.as_deref(), self.bos_id))
            .field("eos", &(self.eos_token.as_deref(), &self.eos_ids))
            .field("pad", &(self.pad_token.as_deref(), self.pad_id))
            .field("add_bos", &self.add_bos)
            .field("chat_template", &self.chat_template.is_some())
            .finish()
    }
}

// Split regexes as written in the original tokenizer.json files (llama.cpp uses the same
// with the case-insensitive group spelled out).
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The byte-level BPE pre-tokenizers we can rebuild from `tokenizer.ggml.pre`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PreKind {
    /// GPT-2's regex inside ByteLevel. (llama.cpp's "default" is a rarely used mix of
    /// regexes; transformers reads it, like any name it does not know, as GPT-2's.)
    Gpt2,
    /// SmolLM / StarCoder: every digit alone, then GPT-2's regex, as llama.cpp and SmolLM's
    /// tokenizer.json have it. transformers' GGUF loader skips the digit split; the ids are
    /// the same whenever no merge joins digits, as in SmolLM's vocabulary.
    SmolLm,
    /// Qwen2 regex (single digits). Qwen's own tokenizer.json also NFC-normalizes; llama.cpp
    /// and transformers' GGUF loader do not, and neither do we.
    Qwen2,
    /// Llama 3 regex (digits in groups of up to three), and a pre-token that is a vocabulary
    /// entry is taken whole (`ignore_merges`, as in Llama 3's tokenizer.json and llama.cpp;
    /// transformers' GGUF loader leaves it off).
    Llama3,
}

const SUPPORTED_PRE: &str = "\"default\", \"gpt2\", \"gpt-2\", \"smollm\", \"qwen2\", \"deepseek-r1-qwen\", \"megrez\", \"llama-bpe\", \"llama3\", \"llama-v3\", \"falcon3\", \"dbrx\", \"smaug-bpe\"";

impl PreKind {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "default" | "gpt2" | "gpt-2" => Self::Gpt2,
            "smollm" => Self::SmolLm,
            "qwen2" | "deepseek-r1-qwen" | "megrez" => Self::Qwen2,
            "llama-bpe" | "llama3" | "llama-v3" | "falcon3" | "dbrx" | "smaug-bpe" => Self::Llama3,
            _ => return None,
        })
    }

    fn pre_tokenizer(self) -> Result<PreTokenizerWrapper> {
        // trim_offsets only matters in post-processing; offsets keep their leading space,
        // as transformers' offset mapping does for these models.
        let byte_level = |use_regex| ByteLevel::new(false, false, use_regex);
        let split = |pattern: &str| -> Result<PreTokenizerWrapper> {
            let s = Split::new(
                SplitPattern::Regex(pattern.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| anyhow!("pre-tokenizer regex: {e}"))?;
            Ok(s.into())
        };
        Ok(match self {
            Self::Gpt2 => byte_level(true).into(),
            Self::SmolLm => {
                Sequence::new(vec![Digits::new(true).into(), byte_level(true).into()]).into()
            }
            Self::Qwen2 => {
                Sequence::new(vec![split(QWEN2_PATTERN)?, byte_level(false).into()]).into()
            }
            Self::Llama3 => {
                Sequence::new(vec![split(LLAMA3_PATTERN)?, byte_level(false).into()]).into()
            }
        })
    }
}

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

impl Tokenizer {
    /// Load a Hugging Face tokenizer directory: tokenizer.json (required), and when present
    /// tokenizer_config.json (special tokens, chat template), chat_template.jinja
    /// (transformers 5 keeps the template there; it wins) and generation_config.json
    /// (`eos_token_id`, one id or a list, extends `eos_ids`).
    ///
    /// Whether BOS is added is what tokenizer.json's post-processor does: transformers'
    /// generic fast tokenizer (`PreTrainedTokenizerFast`, 5.x `TokenizersBackend`) ignores
    /// the config's `add_bos_token`, so we only warn when the two disagree.
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        let tok_path = dir.join("tokenizer.json");
        if !tok_path.is_file() {
            bail!(
                "{}: not found (a Hugging Face tokenizer directory needs tokenizer.json)",
                tok_path.display()
            );
        }
        let bytes = std::fs::read(&tok_path)
            .with_context(|| format!("{}: cannot read", tok_path.display()))?;
        let invalid = |e: &dyn std::fmt::Display| {
            anyhow!("{}: not a valid tokenizer.json: {e}", tok_path.display())
        };
        // The tokenizers crate panics (an `expect` in its decoder deserializer) on some
        // malformed files, found by fuzzing: check the JSON first, and keep a panic, should
        // one remain, an error.
        serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| invalid(&e))?;
        let inner = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_bytes(&bytes))
            .map_err(|_| invalid(&"the tokenizers library could not read it"))?
            .map_err(|e| invalid(&e))?;

        let config = read_json_if_present(&dir.join("tokenizer_config.json"))?;
        let cfg = |key: &str| config.as_ref().and_then(|c| c.get(key));
        let token_of = |key: &str| cfg(key).and_then(token_content);

        let mut chat_template = match cfg("chat_template") {
            Some(v) => template_from_config(v),
            None => None,
        };
        let jinja_path = dir.join("chat_template.jinja");
        if jinja_path.is_file() {
            chat_template = Some(
                std::fs::read_to_string(&jinja_path)
                    .with_context(|| format!("{}: cannot read", jinja_path.display()))?,
            );
        }

        let bos_token = token_of("bos_token");
        let eos_token = token_of("eos_token");
        let pad_token = token_of("pad_token");
        let id_of = |tok: &Option<String>| tok.as_deref().and_then(|t| inner.token_to_id(t));
        let bos_id = id_of(&bos_token);
        let pad_id = id_of(&pad_token);
        let mut eos_ids: Vec<u32> = id_of(&eos_token).into_iter().collect();
        let gen_path = dir.join("generation_config.json");
        if let Some(gen) = read_json_if_present(&gen_path)? {
            for id in json_ids(gen.get("eos_token_id")) {
                if !eos_ids.contains(&id) {
                    eos_ids.push(id);
                }
            }
        }
        let add_bos = adds_bos(&inner, bos_id);
        if let Some(flag) = cfg("add_bos_token").and_then(Json::as_bool) {
            if flag != add_bos {
                tracing::warn!(
                    "{}: add_bos_token = {flag} but tokenizer.json's post-processor {} BOS; following tokenizer.json, as transformers does",
                    dir.display(),
                    if add_bos { "adds" } else { "does not add" }
                );
            }
        }
        Ok(Self {
            inner,
            bos_token,
            bos_id,
            eos_token,
            eos_ids,
            pad_token,
            pad_id,
            add_bos,
            chat_template,
        })
    }

    /// Rebuild the tokenizer stored in GGUF metadata (`tokenizer.ggml.*`, byte-level BPE
    /// only). `path` only names the file in error messages.
    pub fn from_gguf(content: &gguf_file::Content, path: &Path) -> Result<Self> {
        let meta = GgufMeta {
            content,
            file: path.display().to_string(),
        };
        let model = meta.str("tokenizer.ggml.model")?.ok_or_else(|| {
            anyhow!(
                "{}: no tokenizer in this GGUF file (key tokenizer.ggml.model is missing)",
                meta.file
            )
        })?;
        if model != "gpt2" {
            bail!(
                "{}: tokenizer.ggml.model = {model:?} is not supported; supported: \"gpt2\" (byte-level BPE)",
                meta.file
            );
        }
        let pre_name = match meta.str("tokenizer.ggml.pre")? {
            Some(p) => p,
            None => {
                // llama.cpp falls back to its default too, with a warning.
                tracing::warn!("{}: no tokenizer.ggml.pre, using \"default\"", meta.file);
                "default"
            }
        };
        let pre = PreKind::from_name(pre_name).ok_or_else(|| {
            anyhow!(
                "{}: tokenizer.ggml.pre = {pre_name:?} is not supported; supported: {SUPPORTED_PRE}",
                meta.file
            )
        })?;

        let tokens = meta.required_strings("tokenizer.ggml.tokens")?;
        let merges_raw = meta.required_strings("tokenizer.ggml.merges")?;
        let n = tokens.len();
        let types = match meta.ints("tokenizer.ggml.token_type")? {
            Some(t) if t.len() != n => bail!(
                "{}: tokenizer.ggml.token_type has {} entries for {n} tokens",
                meta.file,
                t.len()
            ),
            t => t,
        };

        // Every token should be spelled in the byte-level alphabet; some converters store
        // a few as raw text (e.g. real spaces). Re-spell those, as transformers does, so
        // they are reachable and decode to their text.
        let byte_chars = byte_level_chars();
        let in_alphabet = |t: &str| t.chars().all(in_byte_alphabet);
        let spelled: Vec<String> = tokens
            .iter()
            .map(|t| {
                if in_alphabet(t) {
                    t.to_string()
                } else {
                    t.bytes().map(|b| byte_chars[b as usize]).collect()
                }
            })
            .collect();
        let mut vocab = Vocab::default();
        for (i, t) in spelled.iter().enumerate() {
            vocab.insert(t.clone(), i as u32);
        }
        if vocab.len() != n {
            tracing::warn!(
                "{}: {} duplicate strings in tokenizer.ggml.tokens; the later ids win",
                meta.file,
                n - vocab.len()
            );
        }
        let mut merges = Vec::with_capacity(merges_raw.len());
        for (i, m) in merges_raw.iter().enumerate() {
            let (a, b) = m.split_once(' ').ok_or_else(|| {
                anyhow!(
                    "{}: tokenizer.ggml.merges[{i}] = {m:?} is not two tokens separated by a space",
                    meta.file
                )
            })?;
            merges.push((a.to_string(), b.to_string()));
        }

        let id_key = |key: &str| -> Result<Option<u32>> {
            match meta.u32(key)? {
                Some(id) if id as usize >= n => bail!(
                    "{}: {key} = {id} is outside the vocabulary ({n} tokens)",
                    meta.file
                ),
                id => Ok(id),
            }
        };
        let bos_id = id_key("tokenizer.ggml.bos_token_id")?;
        let eos_id = id_key("tokenizer.ggml.eos_token_id")?;
        let eot_id = id_key("tokenizer.ggml.eot_token_id")?;
        let eom_id = id_key("tokenizer.ggml.eom_token_id")?;
        let unk_id = id_key("tokenizer.ggml.unknown_token_id")?;
        let pad_id = id_key("tokenizer.ggml.padding_token_id")?;
        let token_str = |id: Option<u32>| id.map(|i| spelled[i as usize].clone());

        let mut bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            // Llama 3's tokenizer.json (and llama.cpp) take a pre-token that is already a
            // vocabulary entry as is.
            .ignore_merges(pre == PreKind::Llama3);
        if let Some(unk) = token_str(unk_id) {
            bpe = bpe.unk_token(unk);
        }
        let bpe = bpe
            .build()
            .map_err(|e| anyhow!("{}: invalid BPE vocabulary/merges: {e}", meta.file))?;

        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner
            .with_pre_tokenizer(Some(pre.pre_tokenizer().with_context(|| {
                format!("{}: tokenizer.ggml.pre = {pre_name:?}", meta.file)
            })?));
        inner.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::new(
            false, false, true,
        ))));

        // Control tokens are special (matched whole, skipped when decoding with
        // skip_special); user-defined ones (e.g. <think>, <tool_call>) are matched whole but
        // are ordinary text, as in the original tokenizer.json. Both keep their vocab ids
        // because their strings are vocabulary entries. One not spelled in the byte alphabet
        // is a converter's mislabel and stays ordinary (transformers skips those too).
        if let Some(types) = &types {
            let added = |wanted: i64, special: bool| -> Vec<AddedToken> {
                tokens
                    .iter()
                    .zip(types)
                    .filter(|(t, &ty)| ty == wanted && !t.is_empty() && in_alphabet(t))
                    .map(|(t, _)| AddedToken::from(t.to_string(), special).normalized(false))
                    .collect()
            };
            inner
                .add_special_tokens(added(TOKEN_TYPE_CONTROL, true))
                .map_err(|e| anyhow!("{}: adding control tokens: {e}", meta.file))?;
            inner
                .add_tokens(added(TOKEN_TYPE_USER_DEFINED, false))
                .map_err(|e| anyhow!("{}: adding user-defined tokens: {e}", meta.file))?;
        } else {
            let specials = [bos_id, eos_id, eot_id, eom_id, unk_id, pad_id]
                .into_iter()
                .flatten()
                .map(|id| AddedToken::from(spelled[id as usize].clone(), true).normalized(false))
                .collect::<Vec<_>>();
            inner
                .add_special_tokens(specials)
                .map_err(|e| anyhow!("{}: adding special tokens: {e}", meta.file))?;
        }

        // llama.cpp's default: only Llama-3-style vocabularies add BOS unless the file says.
        let add_bos = meta
            .bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(pre == PreKind::Llama3)
            && bos_id.is_some();
        let bos_token = token_str(bos_id);
        if add_bos {
            inner.with_post_processor(bos_post_processor(bos_token.as_deref().zip(bos_id))?);
        }

        let mut eos_ids = Vec::new();
        for id in [eos_id, eot_id, eom_id].into_iter().flatten() {
            if !eos_ids.contains(&id) {
                eos_ids.push(id);
            }
        }
        Ok(Self {
            inner,
            bos_token,
            bos_id,
            eos_token: token_str(eos_id),
            eos_ids,
            pad_token: token_str(pad_id),
            pad_id,
            add_bos,
            chat_template: meta.str("tokenizer.chat_template")?.map(str::to_string),
        })
    }

    /// Token ids of `text`; with `add_special`, BOS goes first when the tokenizer wants one.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special)
            .map_err(|e| anyhow!("tokenizing failed: {e}"))?;
        let mut ids = enc.get_ids().to_vec();
        // `add_bos` is public: when set by hand it may disagree with the post-processor.
        if add_special {
            if let Some(b) = self.bos_id {
                let post_adds = adds_bos(&self.inner, self.bos_id);
                if self.add_bos && !post_adds {
                    ids.insert(0, b);
                } else if !self.add_bos && post_adds && ids.first() == Some(&b) {
                    ids.remove(0);
                }
            }
        }
        Ok(ids)
    }

    /// Ids and byte offsets `(start, end)` of each token inside `text`; no special tokens
    /// are added. A leading space belongs to its token (" bag" starts at the space).
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<ByteSpan>)> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow!("tokenizing failed: {e}"))?;
        Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()))
    }

    /// Text of `ids`. Ids outside the vocabulary are dropped, as Hugging Face tokenizers do.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| anyhow!("decoding failed: {e}"))
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Whether `id` is a special (control) token such as `<|im_end|>`.
    pub fn is_special(&self, id: u32) -> bool {
        self.inner
            .get_added_vocabulary()
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|t| t.special)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Render the chat template as transformers' `apply_chat_template(..., tokenize=False)`.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self.chat_template.as_deref().ok_or_else(|| {
            anyhow!(
                "this tokenizer has no chat template; use a raw prompt, or add chat_template.jinja to the model directory"
            )
        })?;
        render_chat_template(
            template,
            messages,
            add_generation_prompt,
            &TemplateTokens {
                bos_token: self.bos_token.as_deref(),
                eos_token: self.eos_token.as_deref(),
                pad_token: self.pad_token.as_deref(),
            },
        )
    }

    /// Write tokenizer.json and tokenizer_config.json so that transformers' `AutoTokenizer`
    /// and [`Tokenizer::from_hf_dir`] load the same tokenizer. generation_config.json (extra
    /// eos ids) is the model saver's business.
    pub fn save_hf(&self, dir: &Path, model_max_length: usize) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create directory", dir.display()))?;
        // transformers adds BOS only when tokenizer.json's post-processor does (and so does
        // from_hf_dir): if `add_bos` was changed by hand, write a post-processor that agrees.
        let mut inner = self.inner.clone();
        if self.add_bos != adds_bos(&self.inner, self.bos_id) {
            let bos = if self.add_bos {
                self.bos_token.as_deref().zip(self.bos_id)
            } else {
                None
            };
            inner.with_post_processor(bos_post_processor(bos)?);
        }
        let tok_path = dir.join("tokenizer.json");
        inner
            .save(&tok_path, true)
            .map_err(|e| anyhow!("{}: cannot write: {e}", tok_path.display()))?;

        let mut cfg = serde_json::Map::new();
        cfg.insert("add_bos_token".into(), Json::Bool(self.add_bos));
        let opt = |t: &Option<String>| t.clone().map_or(Json::Null, Json::String);
        cfg.insert("bos_token".into(), opt(&self.bos_token));
        cfg.insert("eos_token".into(), opt(&self.eos_token));
        cfg.insert("pad_token".into(), opt(&self.pad_token));
        if let Some(t) = &self.chat_template {
            cfg.insert("chat_template".into(), Json::String(t.clone()));
        }
        cfg.insert("clean_up_tokenization_spaces".into(), Json::Bool(false));
        cfg.insert("model_max_length".into(), Json::from(model_max_length));
        cfg.insert(
            "tokenizer_class".into(),
            Json::String("PreTrainedTokenizerFast".into()),
        );
        let cfg_path = dir.join("tokenizer_config.json");
        let text = serde_json::to_string_pretty(&Json::Object(cfg))?;
        std::fs::write(&cfg_path, text + "\n")
            .with_context(|| format!("{}: cannot write", cfg_path.display()))?;

        // A chat_template.jinja left from an earlier save would win over the config's
        // template on load: keep it in step.
        let jinja_path = dir.join("chat_template.jinja");
        if jinja_path.exists() {
            match &self.chat_template {
                Some(t) => std::fs::write(&jinja_path, t),
                None => std::fs::remove_file(&jinja_path),
            }
            .with_context(|| format!("{}: cannot update", jinja_path.display()))?;
        }
        Ok(())
    }
}

/// Whether encoding with special tokens puts `bos_id` first (what the post-processor does).
fn adds_bos(inner: &tokenizers::Tokenizer, bos_id: Option<u32>) -> bool {
    let Some(bos) = bos_id else {
        return false;
    };
    inner.get_post_processor().is_some()
        && inner
            .encode("", true)
            .is_ok_and(|e| e.get_ids().first() == Some(&bos))
}

/// GPT-2's byte-to-character table: printable Latin-1 bytes stand for themselves, the rest
/// (controls, space, DEL, NBSP, soft hyphen) map to U+0100 upwards, in byte order.
fn byte_level_chars() -> Vec<char> {
    let mut next = 256u32;
    (0..=255u8)
        .map(|b| {
            if self_spelled(b) {
                char::from(b)
            } else {
                let c = char::from_u32(next).unwrap_or('\u{FFFD}');
                next += 1;
                c
            }
        })
        .collect()
}

fn self_spelled(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// Whether `c` is one of the 256 characters of the byte-level alphabet (68 bytes are remapped).
fn in_byte_alphabet(c: char) -> bool {
    let u = c as u32;
    match u8::try_from(u) {
        Ok(b) => self_spelled(b),
        Err(_) => (256..256 + 68).contains(&u),
    }
}

/// `BOS $A` (pairs: `BOS $A BOS $B`) as Llama 3's tokenizer.json has it, or no
/// post-processor at all without a BOS to add.
fn bos_post_processor(bos: Option<(&str, u32)>) -> Result<Option<PostProcessorWrapper>> {
    let Some((tok, id)) = bos else {
        return Ok(None);
    };
    let err = |e: String| anyhow!("building the BOS post-processor: {e}");
    // Template pieces are parsed from "name:type_id" strings split on spaces, so a token
    // containing ':' or ' ' gets a plain key; the token string itself is given separately.
    let key = if tok.contains([':', ' ']) || tok.starts_with('$') || tok.is_empty() {
        "BOS"
    } else {
        tok
    };
    let special = SpecialToken::new(key.to_string(), vec![id], vec![tok.to_string()])
        .map_err(|e| err(e.to_string()))?;
    let tp = TemplateProcessing::builder()
        .try_single(vec![format!("{key}:0"), "$A:0".to_string()])
        .map_err(err)?
        .try_pair(vec![
            format!("{key}:0"),
            "$A:0".to_string(),
            format!("{key}:1"),
            "$B:1".to_string(),
        ])
        .map_err(err)?
        .special_tokens(vec![special])
        .build()
        .map_err(|e| err(e.to_string()))?;
    Ok(Some(tp.into()))
}

/// A special-token entry of tokenizer_config.json: a string or an AddedToken dict.
fn token_content(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(str::to_string),
        _ => None,
    }
}

/// `chat_template` as a string, or a list of `{name, template}` of which we take "default".
fn template_from_config(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Array(items) => {
            let named = |name: &str| {
                items.iter().find_map(|it| {
                    (it.get("name")?.as_str()? == name)
                        .then(|| it.get("template")?.as_str().map(str::to_string))
                        .flatten()
                })
            };
            let t = named("default");
            if t.is_none() {
                tracing::warn!("chat_template lists named templates but none is \"default\"");
            }
            t
        }
        _ => None,
    }
}

/// `eos_token_id` as one id or a list of ids.
fn json_ids(v: Option<&Json>) -> Vec<u32> {
    match v {
        Some(Json::Number(n)) => n
            .as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .into_iter()
            .collect(),
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
            .collect(),
        _ => Vec::new(),
    }
}

fn read_json_if_present(path: &Path) -> Result<Option<Json>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let v = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    Ok(Some(v))
}

/// Typed access to GGUF metadata with errors that name the file and the key.
struct GgufMeta<'a> {
    content: &'a gguf_file::Content,
    file: String,
}

impl GgufMeta<'_> {
    fn get(&self, key: &str) -> Option<&gguf_file::Value> {
        self.content.metadata.get(key)
    }

    fn wrong_type(&self, key: &str, expected: &str, v: &gguf_file::Value) -> anyhow::Error {
        anyhow!(
            "{}: {key} should be {expected}, found {:?}",
            self.file,
            v.value_type()
        )
    }

    fn str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(gguf_file::Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong_type(key, "a string", v)),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(gguf_file::Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong_type(key, "a bool", v)),
        }
    }

    fn u32(&self, key: &str) -> Result<Option<u32>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => int_of(v)
                .and_then(|x| u32::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "a non-negative integer", v)),
        }
    }

    fn required_strings(&self, key: &str) -> Result<Vec<&str>> {
        let v = self
            .get(key)
            .ok_or_else(|| anyhow!("{}: GGUF key {key} is missing", self.file))?;
        let gguf_file::Value::Array(items) = v else {
            return Err(self.wrong_type(key, "an array of strings", v));
        };
        items
            .iter()
            .map(|it| match it {
                gguf_file::Value::String(s) => Ok(s.as_str()),
                other => Err(self.wrong_type(key, "an array of strings", other)),
            })
            .collect()
    }

    fn ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let gguf_file::Value::Array(items) = v else {
            return Err(self.wrong_type(key, "an array of integers", v));
        };
        items
            .iter()
            .map(|it| int_of(it).ok_or_else(|| self.wrong_type(key, "an array of integers", it)))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

fn int_of(v: &gguf_file::Value) -> Option<i64> {
    use gguf_file::Value as V;
    match *v {
        V::U8(x) => Some(x.into()),
        V::I8(x) => Some(x.into()),
        V::U16(x) => Some(x.into()),
        V::I16(x) => Some(x.into()),
        V::U32(x) => Some(x.into()),
        V::I32(x) => Some(x.into()),
        V::U64(x) => i64::try_from(x).ok(),
        V::I64(x) => Some(x),
        _ => None,
    }
}
