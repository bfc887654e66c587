//! Tokenizer and chat-template tests against the real default model (SmolLM2-135M-Instruct
//! GGUF) and the transformers-computed reference fixture.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::quantized::gguf_file;
use egi_model::chat::{render_chat_template, ChatMessage, TemplateTokens};
use egi_model::tokenizer::Tokenizer;
use serde_json::Value;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

fn gguf_path() -> PathBuf {
    let home = std::env::var("HOME").expect("HOME is not set");
    Path::new(&home).join(".cache/egi/models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn read_gguf() -> gguf_file::Content {
    let path = gguf_path();
    let mut f = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: cannot open the default model: {e}", path.display()));
    gguf_file::Content::read(&mut f).expect("reading GGUF metadata")
}

/// The GGUF metadata with `edit` applied (the tokenizer only looks at metadata).
fn edited_gguf(
    edit: impl FnOnce(&mut std::collections::HashMap<String, gguf_file::Value>),
) -> gguf_file::Content {
    let c = read_gguf();
    let mut metadata = c.metadata;
    edit(&mut metadata);
    gguf_file::Content {
        magic: c.magic,
        metadata,
        tensor_infos: Default::default(),
        tensor_data_offset: c.tensor_data_offset,
    }
}

fn smollm() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::from_gguf(&read_gguf(), &gguf_path()).expect("SmolLM2 tokenizer"))
}

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/reference")
}

struct Token {
    id: u32,
    text: String,
    char_start: usize,
}

struct Case {
    id: String,
    prompt: String,
    response: String,
    prompt_text: String,
    input_ids: Vec<u32>,
    n_prompt: usize,
    tokens: Vec<Token>,
}

fn cases() -> Vec<Case> {
    let path = reference_dir().join("smollm2_public.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: cannot read fixture: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("fixture JSON");
    let s = |c: &Value, k: &str| {
        c[k].as_str()
            .unwrap_or_else(|| panic!("fixture {k}"))
            .to_string()
    };
    let cases: Vec<Case> = v["cases"]
        .as_array()
        .expect("fixture cases")
        .iter()
        .map(|c| Case {
            id: s(c, "id"),
            prompt: s(c, "prompt"),
            response: s(c, "response"),
            prompt_text: s(c, "prompt_text"),
            input_ids: c["input_ids"]
                .as_array()
                .expect("input_ids")
                .iter()
                .map(|x| x.as_u64().expect("id") as u32)
                .collect(),
            n_prompt: c["n_prompt"].as_u64().expect("n_prompt") as usize,
            tokens: c["tokens"]
                .as_array()
                .expect("tokens")
                .iter()
                .map(|t| Token {
                    id: t["id"].as_u64().expect("token id") as u32,
                    text: t["text"].as_str().expect("token text").to_string(),
                    char_start: t["char_start"].as_u64().expect("char_start") as usize,
                })
                .collect(),
        })
        .collect();
    assert!(!cases.is_empty());
    cases
}

fn user(prompt: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::user(prompt)]
}

/// Texts that stress the byte-level pipeline: unicode, digits, emoji, newlines, specials.
const TRICKY: &[&str] = &[
    "Héllo wörld — naïve café, 12345 + 0.5 = 12345.5\n\n\ttabs  and   spaces ",
    "emoji 😀👍🏽 🇫🇷 and CJK 漢字かな 한국어; math ∑∫√ ≤ ≥",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "I'm sure they'll've DONE it's 1st\r\nline",
    "",
];

#[test]
fn gguf_special_tokens_and_settings() {
    let t = smollm();
    assert_eq!(t.vocab_size(), 49152);
    assert_eq!(t.bos_token.as_deref(), Some("<|im_start|>"));
    assert_eq!(t.bos_id, Some(1));
    assert_eq!(t.eos_token.as_deref(), Some("<|im_end|>"));
    assert_eq!(t.eos_ids, vec![2]);
    assert_eq!(t.pad_token.as_deref(), Some("<|im_end|>"));
    assert_eq!(t.pad_id, Some(2));
    assert!(!t.add_bos, "the GGUF says add_bos_token = false");
    assert!(t.chat_template.as_deref().unwrap().contains("<|im_start|>"));
    for id in 0..17 {
        assert!(t.is_special(id), "control token {id}");
    }
    assert!(!t.is_special(17));
    assert!(!t.is_special(10313));
    assert!(!t.is_special(u32::MAX));
    // Control tokens in text are matched whole; no BOS is added for this model.
    assert_eq!(t.encode("<|im_end|>", false).unwrap(), vec![2]);
    assert_eq!(
        t.encode("Each bag", true).unwrap(),
        t.encode("Each bag", false).unwrap()
    );
    assert_eq!(
        t.decode(&[1, 4093, 198, 2], false).unwrap(),
        "<|im_start|>user\n<|im_end|>"
    );
    assert_eq!(t.decode(&[1, 4093, 198, 2], true).unwrap(), "user\n");
}

#[test]
fn fixture_chat_template_and_ids() {
    let t = smollm();
    for c in cases() {
        let prompt_text = t.apply_chat_template(&user(&c.prompt), true).unwrap();
        assert_eq!(prompt_text, c.prompt_text, "case {}: prompt text", c.id);
        let full = format!("{}{}", c.prompt_text, c.response);
        assert_eq!(
            t.encode(&full, false).unwrap(),
            c.input_ids,
            "case {}: ids",
            c.id
        );
        assert_eq!(
            t.encode(&c.prompt_text, false).unwrap().len(),
            c.n_prompt,
            "case {}: n_prompt",
            c.id
        );
        // Without the generation prompt the template stops after the user turn.
        let no_gen = t.apply_chat_template(&user(&c.prompt), false).unwrap();
        assert_eq!(format!("{no_gen}<|im_start|>assistant\n"), c.prompt_text);
    }
}

#[test]
fn fixture_offsets_and_token_texts() {
    let t = smollm();
    for c in cases() {
        let full = format!("{}{}", c.prompt_text, c.response);
        let (ids, offsets) = t.encode_with_offsets(&full).unwrap();
        assert_eq!(ids, c.input_ids, "case {}", c.id);
        assert_eq!(offsets.len(), ids.len());
        assert_eq!(c.tokens.len(), ids.len() - c.n_prompt, "case {}", c.id);
        let start = c.prompt_text.len();
        for (k, tok) in c.tokens.iter().enumerate() {
            let pos = c.n_prompt + k;
            assert_eq!(ids[pos], tok.id, "case {} token {k}", c.id);
            let (s, e) = offsets[pos];
            assert!(
                s >= start && e <= full.len() && s < e,
                "case {} token {k}",
                c.id
            );
            let char_start = full[start..s].chars().count();
            assert_eq!(
                char_start, tok.char_start,
                "case {} token {k} char_start",
                c.id
            );
            // The offsets cover exactly the token's text (leading space included).
            assert_eq!(&full[s..e], tok.text, "case {} token {k} span", c.id);
            assert_eq!(
                t.decode(&[tok.id], false).unwrap(),
                tok.text,
                "case {} token {k}",
                c.id
            );
        }
        // The whole sequence decodes back to the text.
        assert_eq!(t.decode(&ids, false).unwrap(), full);
    }
}

#[test]
fn decode_round_trips_tricky_text() {
    let t = smollm();
    for text in TRICKY {
        let ids = t.encode(text, false).unwrap();
        assert_eq!(&t.decode(&ids, false).unwrap(), text);
        let (ids2, offsets) = t.encode_with_offsets(text).unwrap();
        assert_eq!(ids, ids2);
        // Offsets are byte offsets on char boundaries, in order.
        let mut last = 0;
        for &(s, e) in &offsets {
            assert!(
                s <= e && e <= text.len() && s >= last,
                "{text:?}: {offsets:?}"
            );
            assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
            last = s;
        }
    }
    // SmolLM's pre-tokenizer splits every digit.
    let digits = t.encode("12345", false).unwrap();
    assert_eq!(digits.len(), 5);
    assert_eq!(t.decode(&digits[..1], false).unwrap(), "1");
}

#[test]
fn hf_round_trip() {
    let t = smollm();
    let dir = tempfile::tempdir().unwrap();
    t.save_hf(dir.path(), 8192).unwrap();
    let cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["tokenizer_class"], "PreTrainedTokenizerFast");
    assert_eq!(cfg["clean_up_tokenization_spaces"], false);
    assert_eq!(cfg["model_max_length"], 8192);
    assert_eq!(cfg["bos_token"], "<|im_start|>");
    assert_eq!(cfg["eos_token"], "<|im_end|>");
    assert_eq!(cfg["pad_token"], "<|im_end|>");
    assert_eq!(cfg["add_bos_token"], false);
    assert_eq!(cfg["chat_template"].as_str(), t.chat_template.as_deref());

    let back = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert_eq!(back.vocab_size(), t.vocab_size());
    assert_eq!(back.bos_token, t.bos_token);
    assert_eq!(back.bos_id, t.bos_id);
    assert_eq!(back.eos_token, t.eos_token);
    assert_eq!(back.eos_ids, t.eos_ids);
    assert_eq!(back.pad_token, t.pad_token);
    assert_eq!(back.pad_id, t.pad_id);
    assert_eq!(back.add_bos, t.add_bos);
    assert_eq!(back.chat_template, t.chat_template);
    for id in [0, 1, 2, 16, 17, 10313] {
        assert_eq!(back.is_special(id), t.is_special(id), "id {id}");
    }
    let mut texts: Vec<String> = TRICKY.iter().map(|s| s.to_string()).collect();
    for c in cases() {
        texts.push(format!("{}{}", c.prompt_text, c.response));
        assert_eq!(
            back.apply_chat_template(&user(&c.prompt), true).unwrap(),
            c.prompt_text
        );
        assert_eq!(
            back.encode(&format!("{}{}", c.prompt_text, c.response), false)
                .unwrap(),
            c.input_ids
        );
    }
    for text in &texts {
        for add_special in [false, true] {
            assert_eq!(
                back.encode(text, add_special).unwrap(),
                t.encode(text, add_special).unwrap(),
                "{text:?}"
            );
        }
        assert_eq!(
            back.encode_with_offsets(text).unwrap(),
            t.encode_with_offsets(text).unwrap()
        );
        let ids = t.encode(text, false).unwrap();
        assert_eq!(
            back.decode(&ids, true).unwrap(),
            t.decode(&ids, true).unwrap()
        );
    }
    let chat = vec![
        ChatMessage::system("Be brief."),
        ChatMessage::user("2+2?"),
        ChatMessage::assistant("4"),
        ChatMessage::user("And 3+3? 😀"),
    ];
    assert_eq!(
        back.apply_chat_template(&chat, true).unwrap(),
        t.apply_chat_template(&chat, true).unwrap()
    );
}

#[test]
fn add_bos_survives_save_and_load_once() {
    let mut t = smollm().clone();
    t.add_bos = true;
    let plain = t.encode("Hello there", false).unwrap();
    let with = t.encode("Hello there", true).unwrap();
    assert_eq!(with[0], 1);
    assert_eq!(&with[1..], &plain[..]);

    let dir = tempfile::tempdir().unwrap();
    t.save_hf(dir.path(), 2048).unwrap();
    // transformers only adds BOS when tokenizer.json's post-processor says so.
    let json = std::fs::read_to_string(dir.path().join("tokenizer.json")).unwrap();
    assert!(json.contains("TemplateProcessing"));
    let back = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert!(back.add_bos);
    assert_eq!(
        back.encode("Hello there", true).unwrap(),
        with,
        "exactly one BOS"
    );
    assert_eq!(back.encode("Hello there", false).unwrap(), plain);
    let (ids, offsets) = back.encode_with_offsets("Hello there").unwrap();
    assert_eq!(ids, plain);
    assert_eq!(offsets.len(), plain.len());

    // tokenizer.json's post-processor decides, whatever the config says (as in transformers
    // 5, whose generic tokenizer ignores add_bos_token).
    let cfg_path = dir.path().join("tokenizer_config.json");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["add_bos_token"] = Value::Bool(false);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let back = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert!(back.add_bos);
    assert_eq!(back.encode("Hello there", true).unwrap(), with);

    // Turning it off by hand and saving removes the BOS from tokenizer.json.
    let mut off = back.clone();
    off.add_bos = false;
    assert_eq!(
        off.encode("Hello there", true).unwrap(),
        plain,
        "add_bos off wins"
    );
    off.save_hf(dir.path(), 2048).unwrap();
    let back = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert!(!back.add_bos);
    assert_eq!(back.encode("Hello there", true).unwrap(), plain);

    // A BOS token containing ':' or ' ' still works in the template.
    let mut odd = smollm().clone();
    let colon = odd.token_to_id(":").unwrap();
    odd.bos_token = Some(":".into());
    odd.bos_id = Some(colon);
    odd.add_bos = true;
    let colon_dir = tempfile::tempdir().unwrap();
    odd.save_hf(colon_dir.path(), 16).unwrap();
    let back = Tokenizer::from_hf_dir(colon_dir.path()).unwrap();
    assert!(back.add_bos);
    let ids = back.encode("x", true).unwrap();
    assert_eq!(ids[0], colon);
    assert_eq!(&ids[1..], &back.encode("x", false).unwrap()[..]);
}

#[test]
fn hf_dir_config_variants() {
    let dir = tempfile::tempdir().unwrap();
    smollm().save_hf(dir.path(), 8192).unwrap();
    // AddedToken dicts, a list of named templates, generation_config eos list.
    let cfg = serde_json::json!({
        "bos_token": {"content": "<|im_start|>", "lstrip": false, "normalized": false,
                       "rstrip": false, "single_word": false, "special": true},
        "eos_token": {"content": "<|im_end|>"},
        "pad_token": null,
        "chat_template": [
            {"name": "tool_use", "template": "TOOLS"},
            {"name": "default", "template": "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"}
        ],
        "add_bos_token": false,
    });
    std::fs::write(dir.path().join("tokenizer_config.json"), cfg.to_string()).unwrap();
    std::fs::write(
        dir.path().join("generation_config.json"),
        r#"{"eos_token_id": [2, 0], "bos_token_id": 1}"#,
    )
    .unwrap();
    let t = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert_eq!(t.bos_id, Some(1));
    assert_eq!(t.eos_token.as_deref(), Some("<|im_end|>"));
    assert_eq!(t.eos_ids, vec![2, 0]);
    assert_eq!(t.pad_token, None);
    assert_eq!(t.pad_id, None);
    assert_eq!(
        t.apply_chat_template(&[ChatMessage::user("hi")], false)
            .unwrap(),
        "[user]hi"
    );

    // chat_template.jinja (transformers 5) wins over the config.
    std::fs::write(
        dir.path().join("chat_template.jinja"),
        "JINJA {{ messages|length }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("generation_config.json"),
        r#"{"eos_token_id": 0}"#,
    )
    .unwrap();
    let t = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert_eq!(
        t.apply_chat_template(&[ChatMessage::user("hi")], true)
            .unwrap(),
        "JINJA 1"
    );
    assert_eq!(t.eos_ids, vec![2, 0]);

    // Saving over the directory keeps chat_template.jinja in step with our template.
    smollm().save_hf(dir.path(), 8192).unwrap();
    let t = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert_eq!(t.chat_template, smollm().chat_template);

    // Only tokenizer.json: still usable, nothing special known.
    let bare = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("tokenizer.json"),
        bare.path().join("tokenizer.json"),
    )
    .unwrap();
    let t = Tokenizer::from_hf_dir(bare.path()).unwrap();
    assert_eq!(t.bos_id, None);
    assert!(t.eos_ids.is_empty());
    assert!(t.chat_template.is_none());
    assert_eq!(t.encode("Each bag", false).unwrap(), vec![10313, 8727]);
    let err = t
        .apply_chat_template(&[ChatMessage::user("hi")], true)
        .unwrap_err();
    assert!(format!("{err:#}").contains("no chat template"), "{err:#}");
}

#[test]
fn hf_dir_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Tokenizer::from_hf_dir(dir.path()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("tokenizer.json"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");

    std::fs::write(
        dir.path().join("tokenizer.json"),
        "{\"version\": \"1.0\", \"model\": 17",
    )
    .unwrap();
    let msg = format!("{:#}", Tokenizer::from_hf_dir(dir.path()).unwrap_err());
    assert!(
        msg.contains(&dir.path().join("tokenizer.json").display().to_string()),
        "{msg}"
    );

    smollm().save_hf(dir.path(), 8192).unwrap();
    std::fs::write(dir.path().join("tokenizer_config.json"), "{not json").unwrap();
    let msg = format!("{:#}", Tokenizer::from_hf_dir(dir.path()).unwrap_err());
    assert!(msg.contains("tokenizer_config.json"), "{msg}");

    smollm().save_hf(dir.path(), 8192).unwrap();
    std::fs::write(dir.path().join("generation_config.json"), "[").unwrap();
    let msg = format!("{:#}", Tokenizer::from_hf_dir(dir.path()).unwrap_err());
    assert!(msg.contains("generation_config.json"), "{msg}");
}

fn gguf_err(edit: impl FnOnce(&mut std::collections::HashMap<String, gguf_file::Value>)) -> String {
    let c = edited_gguf(edit);
    match Tokenizer::from_gguf(&c, Path::new("/models/x.gguf")) {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn gguf_errors_name_file_and_key() {
    let msg = gguf_err(|m| {
        m.insert(
            "tokenizer.ggml.pre".into(),
            gguf_file::Value::String("weird".into()),
        );
    });
    assert!(
        msg.contains("/models/x.gguf")
            && msg.contains("tokenizer.ggml.pre")
            && msg.contains("\"weird\"")
            && msg.contains("smollm")
            && msg.contains("qwen2"),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");

    let msg = gguf_err(|m| {
        m.insert(
            "tokenizer.ggml.model".into(),
            gguf_file::Value::String("llama".into()),
        );
    });
    assert!(
        msg.contains("/models/x.gguf")
            && msg.contains("tokenizer.ggml.model")
            && msg.contains("\"llama\"")
            && msg.contains("gpt2"),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");

    let msg = gguf_err(|m| {
        m.remove("tokenizer.ggml.model");
    });
    assert!(
        msg.contains("/models/x.gguf") && msg.contains("tokenizer.ggml.model"),
        "{msg}"
    );

    for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.merges"] {
        let msg = gguf_err(|m| {
            m.remove(key);
        });
        assert!(
            msg.contains("/models/x.gguf") && msg.contains(key) && msg.contains("missing"),
            "{msg}"
        );
        let msg = gguf_err(|m| {
            m.insert(key.into(), gguf_file::Value::U32(3));
        });
        assert!(msg.contains(key) && msg.contains("array"), "{msg}");
    }

    let msg = gguf_err(|m| {
        m.insert(
            "tokenizer.ggml.bos_token_id".into(),
            gguf_file::Value::U32(1_000_000),
        );
    });
    assert!(
        msg.contains("tokenizer.ggml.bos_token_id") && msg.contains("1000000"),
        "{msg}"
    );

    let msg = gguf_err(|m| {
        m.insert(
            "tokenizer.ggml.eos_token_id".into(),
            gguf_file::Value::String("2".into()),
        );
    });
    assert!(msg.contains("tokenizer.ggml.eos_token_id"), "{msg}");

    let msg = gguf_err(|m| {
        m.insert(
            "tokenizer.ggml.merges".into(),
            gguf_file::Value::Array(vec![gguf_file::Value::String("nospace".into())]),
        );
    });
    assert!(msg.contains("tokenizer.ggml.merges[0]"), "{msg}");

    let msg = gguf_err(|m| {
        m.insert(
            "tokenizer.ggml.merges".into(),
            gguf_file::Value::Array(vec![gguf_file::Value::String("zzzq yyyq".into())]),
        );
    });
    assert!(msg.contains("/models/x.gguf"), "{msg}");

    let msg = gguf_err(|m| {
        m.insert(
            "tokenizer.ggml.token_type".into(),
            gguf_file::Value::Array(vec![gguf_file::Value::I32(1)]),
        );
    });
    assert!(msg.contains("tokenizer.ggml.token_type"), "{msg}");
}

/// Pre-tokenizer splits (byte-level symbols: Ġ = space, Ċ = newline).
fn splits(t: &Tokenizer, text: &str) -> Vec<String> {
    let mut pts = PreTokenizedString::from(text);
    t.inner
        .get_pre_tokenizer()
        .expect("pre-tokenizer")
        .pre_tokenize(&mut pts)
        .unwrap();
    pts.get_splits(OffsetReferential::Original, OffsetType::Byte)
        .into_iter()
        .map(|(s, _, _)| s.to_string())
        .collect()
}

fn with_pre(
    pre: &str,
    edit: impl FnOnce(&mut std::collections::HashMap<String, gguf_file::Value>),
) -> Tokenizer {
    let c = edited_gguf(|m| {
        m.insert(
            "tokenizer.ggml.pre".into(),
            gguf_file::Value::String(pre.into()),
        );
        edit(m);
    });
    Tokenizer::from_gguf(&c, &gguf_path()).unwrap()
}

#[test]
fn gguf_pre_tokenizer_kinds() {
    // Expected splits computed with Python's `regex` module on the original patterns.
    let text = "I'm 12345 ok\n\n  x";
    assert_eq!(
        splits(smollm(), text),
        ["I", "'m", "Ġ", "1", "2", "3", "4", "5", "Ġok", "ĊĊĠ", "Ġx"]
    );
    let gpt2 = with_pre("gpt2", |_| {});
    assert_eq!(
        splits(&gpt2, text),
        ["I", "'m", "Ġ12345", "Ġok", "ĊĊĠ", "Ġx"]
    );
    assert_eq!(
        splits(&with_pre("default", |_| {}), text),
        splits(&gpt2, text)
    );

    let qwen = with_pre("qwen2", |_| {});
    assert_eq!(
        splits(&qwen, text),
        ["I", "'m", "Ġ", "1", "2", "3", "4", "5", "Ġok", "ĊĊ", "Ġ", "Ġx"]
    );
    // No normalizer (llama.cpp and transformers' GGUF loader use none), so e + combining
    // acute stays two characters.
    assert!(qwen.inner.get_normalizer().is_none());
    assert_ne!(
        qwen.encode("cafe\u{301}", false).unwrap(),
        qwen.encode("café", false).unwrap()
    );
    assert!(!qwen.add_bos);

    let llama = with_pre("llama-bpe", |m| {
        m.remove("tokenizer.ggml.add_bos_token");
    });
    assert_eq!(
        splits(&llama, text),
        ["I", "'m", "Ġ", "123", "45", "Ġok", "ĊĊ", "Ġ", "Ġx"]
    );
    // Llama-3 vocabularies add BOS unless the file says otherwise (llama.cpp's default).
    assert!(llama.add_bos);
    let ids = llama.encode("Each bag", true).unwrap();
    assert_eq!(ids, [1, 10313, 8727]);
    assert_eq!(llama.encode("Each bag", false).unwrap(), [10313, 8727]);
    assert!(
        !with_pre("llama3", |_| {}).add_bos,
        "the file's add_bos_token = false wins"
    );

    // All kinds decode what they encode.
    for t in [&gpt2, &qwen, &llama] {
        for s in TRICKY {
            let ids = t.encode(s, false).unwrap();
            assert_eq!(&t.decode(&ids, false).unwrap(), s);
        }
    }
}

#[test]
fn gguf_token_types() {
    // A user-defined token (type 4) is matched whole but is ordinary text, like <think>.
    let t = with_pre("smollm", |m| {
        let Some(gguf_file::Value::Array(types)) = m.get_mut("tokenizer.ggml.token_type") else {
            panic!("token_type");
        };
        types[3] = gguf_file::Value::I32(4);
    });
    assert!(!t.is_special(3));
    assert!(t.is_special(2));
    assert_eq!(t.encode("a<repo_name>b", false).unwrap().len(), 3);
    assert!(t.encode("a<repo_name>b", false).unwrap().contains(&3));
    assert_eq!(t.decode(&[3, 2], true).unwrap(), "<repo_name>");

    // A token stored as raw text (not in the byte alphabet) is re-spelled so it decodes to
    // its text; marked control, it is a mislabel and stays ordinary.
    let t = with_pre("smollm", |m| {
        let Some(gguf_file::Value::Array(tokens)) = m.get_mut("tokenizer.ggml.tokens") else {
            panic!("tokens");
        };
        tokens[3] = gguf_file::Value::String("<repo name>".into());
    });
    assert!(!t.is_special(3));
    assert_eq!(t.id_to_token(3).as_deref(), Some("<repoĠname>"));
    assert_eq!(t.decode(&[3], false).unwrap(), "<repo name>");

    // eot/eom ids end generation too.
    let t = with_pre("smollm", |m| {
        m.insert(
            "tokenizer.ggml.eot_token_id".into(),
            gguf_file::Value::U32(0),
        );
    });
    assert_eq!(t.eos_ids, vec![2, 0]);
}

const TEMPLATE: &str = r##"{{ bos_token }}
{%- set ns = namespace(sys='', n=0) %}
{% for message in messages %}
    {% if message['role'] == 'system' %}
        {% set ns.sys = message['content'].strip() %}
    {% elif message['role'] == 'assistant' %}
<|assistant|>{{ message['content'].split('</think>')[-1].lstrip() }}{{ eos_token }}
    {% else %}
        {% set ns.n = ns.n + 1 %}
<|{{ message.role }}|>{{ message.content }}{% if loop.last %} (last){% endif %}

    {% endif %}
{% endfor %}
sys={{ ns.sys }} users={{ ns.n }} tools={{ tools }} docs={{ documents is none }} flag={{ add_generation_prompt }} pad=[{{ pad_token }}]
{{ {"a": 1, "b": [1, 2.5, true, none, "é<>&'\"\\"], "c": {"d": 1e20, "e": 0.5}} | tojson }}
{{ {"a": 1, "b": [2, {"c": []}], "z": {}} | tojson(indent=2) }}
{{ "é😀" | tojson(ensure_ascii=true) }} {{ [1, 2] | tojson(separators=(",", ":")) }} {{ "x".startswith("x") }} {{ "a-b".replace("-", "+") | upper }}
{% if add_generation_prompt %}
<|assistant|>
{% endif %}
"##;

/// What Python jinja2 3.1.6 renders for TEMPLATE with transformers' environment
/// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its tojson).
const TEMPLATE_EXPECTED_JSON: &str = r##""<s><|user|>Hi \u00e9 \ud83d\ude00\nthere\n<|assistant|>Hello!</s>\n<|user|>2+2? (last)\nsys=Be brief. users=2 tools=None docs=True flag=True pad=[]\n{\"a\": 1, \"b\": [1, 2.5, true, null, \"\u00e9<>&'\\\"\\\\\"], \"c\": {\"d\": 1e+20, \"e\": 0.5}}\n{\n  \"a\": 1,\n  \"b\": [\n    2,\n    {\n      \"c\": []\n    }\n  ],\n  \"z\": {}\n}\n\"\\u00e9\\ud83d\\ude00\" [1,2] True A+B\n<|assistant|>\n""##;

#[test]
fn chat_template_matches_jinja2() {
    let messages = vec![
        ChatMessage::system("  Be brief.  "),
        ChatMessage::user("Hi é 😀\nthere"),
        ChatMessage::assistant("<think>hmm</think>\n\nHello!"),
        ChatMessage::user("2+2?"),
    ];
    let tokens = TemplateTokens {
        bos_token: Some("<s>"),
        eos_token: Some("</s>"),
        pad_token: None,
    };
    let expected: String = serde_json::from_str(TEMPLATE_EXPECTED_JSON).unwrap();
    let got = render_chat_template(TEMPLATE, &messages, true, &tokens).unwrap();
    assert_eq!(got, expected);
}

/// A Qwen3-style reasoning template (reversed slicing, namespaces, `is string`, string
/// methods, reasoning split out of `<think>`), checked against Python jinja2's output.
const QWEN3_STYLE: &str = r##"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}
"##;

const QWEN3_EXPECTED_JSON: &str = r##"["<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n", "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n<think>\nSix.\n</think>\n\n6<|im_end|>\n"]"##;

#[test]
fn reasoning_template_matches_jinja2() {
    let msgs = [
        ChatMessage::system("You are Qwen."),
        ChatMessage::user("What is 2+2?"),
        ChatMessage::assistant("<think>\nAdd them.\n</think>\n\n4"),
        ChatMessage::user("And 3+3?"),
        ChatMessage::assistant("<think>\nSix.\n</think>\n\n6"),
    ];
    let tokens = TemplateTokens {
        eos_token: Some("<|im_end|>"),
        ..Default::default()
    };
    let expected: Vec<String> = serde_json::from_str(QWEN3_EXPECTED_JSON).unwrap();
    assert_eq!(
        render_chat_template(QWEN3_STYLE, &msgs[..4], true, &tokens).unwrap(),
        expected[0]
    );
    assert_eq!(
        render_chat_template(QWEN3_STYLE, &msgs, false, &tokens).unwrap(),
        expected[1]
    );
}

#[test]
fn chat_template_errors() {
    let tokens = TemplateTokens::default();
    let msgs = [ChatMessage::user("hi")];
    let raising = "{% for m in messages %}{% if m['role'] == 'user' %}{{ raise_exception('Only assistant roles are supported! got ' ~ m['role']) }}{% endif %}{% endfor %}";
    let err = render_chat_template(raising, &msgs, true, &tokens).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("Only assistant roles are supported! got user"),
        "{msg}"
    );

    let err = render_chat_template(
        "{% for m in messages %}{{ m.content }",
        &msgs,
        true,
        &tokens,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("chat template"), "{err:#}");
    let err =
        render_chat_template("{{ messages | no_such_filter }}", &msgs, true, &tokens).unwrap_err();
    assert!(
        format!("{err:#}").contains("no_such_filter")
            || format!("{err:#}").contains("unknown filter"),
        "{err:#}"
    );

    // Through the tokenizer too.
    let mut t = smollm().clone();
    t.chat_template = Some("{{ raise_exception('no system role') }}".into());
    let msg = format!("{:#}", t.apply_chat_template(&msgs, true).unwrap_err());
    assert!(msg.contains("no system role"), "{msg}");
    t.chat_template = None;
    assert!(t.apply_chat_template(&msgs, true).is_err());
}

#[test]
fn chat_template_helpers() {
    let tokens = TemplateTokens::default();
    let msgs = [ChatMessage::user("hi")];
    let today =
        render_chat_template("{{ strftime_now('%Y-%m-%d') }}", &msgs, false, &tokens).unwrap();
    assert_eq!(today.len(), 10, "{today}");
    assert!(today.starts_with("20"), "{today}");
    // Undefined special tokens render empty, as jinja2 does.
    assert_eq!(
        render_chat_template(
            "[{{ bos_token }}]{{ messages[0]['content'] | tojson }}",
            &msgs,
            false,
            &tokens
        )
        .unwrap(),
        "[]\"hi\""
    );
    // keep_trailing_newline = False drops exactly one final newline.
    assert_eq!(
        render_chat_template("x\n\n", &msgs, false, &tokens).unwrap(),
        "x\n"
    );
}
