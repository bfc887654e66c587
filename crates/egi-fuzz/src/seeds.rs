//! Valid inputs for each target, small enough to fuzz fast, so that mutations reach deep
//! into the parsers instead of stopping at the magic bytes.

use std::path::PathBuf;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};

/// The tiny random Llama of the PyTorch fixtures (config.json, model.safetensors, 300 KB).
pub fn tiny_llama_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-data/reference/tiny/llama")
}

pub fn safetensors() -> Vec<u8> {
    std::fs::read(tiny_llama_dir().join("model.safetensors")).expect("tiny llama weights")
}

/// 128 byte-level BPE tokens: the 94 printable ASCII bytes, `Ġ` (space) and `Ċ` (newline),
/// a few merges, and the ChatML markers.
fn vocab() -> (Vec<String>, Vec<String>) {
    let mut tokens: Vec<String> = vec![
        "<|endoftext|>".into(),
        "<|im_start|>".into(),
        "<|im_end|>".into(),
    ];
    tokens.extend((b'!'..=b'~').map(|b| (b as char).to_string()));
    tokens.extend(["Ġ".to_string(), "Ċ".to_string()]);
    let merges: Vec<String> = [
        "Ġ t", "h e", "Ġt he", "i n", "a n", "Ġ a", "e r", "o n", "r e", "Ġ s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for m in &merges {
        tokens.push(m.replace(' ', ""));
    }
    while tokens.len() < 128 {
        tokens.push(format!("<|extra_{}|>", tokens.len()));
    }
    (tokens, merges)
}

/// A GGUF of the tiny Llama with its tokenizer in the metadata: every part of the loader runs.
pub fn gguf() -> Vec<u8> {
    let w = candle_core::safetensors::load(
        tiny_llama_dir().join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .expect("tiny llama weights");
    let name = |hf: &str| -> Option<String> {
        let fixed = match hf {
            "model.embed_tokens.weight" => Some("token_embd.weight".to_string()),
            "model.norm.weight" => Some("output_norm.weight".to_string()),
            _ => None,
        };
        if fixed.is_some() {
            return fixed;
        }
        let rest = hf.strip_prefix("model.layers.")?;
        let (layer, rest) = rest.split_once('.')?;
        let (part, kind) = rest.rsplit_once('.')?;
        let g = match part {
            "self_attn.q_proj" => "attn_q",
            "self_attn.k_proj" => "attn_k",
            "self_attn.v_proj" => "attn_v",
            "self_attn.o_proj" => "attn_output",
            "input_layernorm" => "attn_norm",
            "post_attention_layernorm" => "ffn_norm",
            "mlp.gate_proj" => "ffn_gate",
            "mlp.up_proj" => "ffn_up",
            "mlp.down_proj" => "ffn_down",
            _ => return None,
        };
        Some(format!("blk.{layer}.{g}.{kind}"))
    };
    let mut tensors: Vec<(String, QTensor)> = w
        .iter()
        .filter_map(|(k, t)| Some((name(k)?, QTensor::quantize(t, GgmlDType::F32).ok()?)))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let (tokens, merges) = vocab();
    let strings = |v: &[String]| {
        gguf_file::Value::Array(
            v.iter()
                .map(|s| gguf_file::Value::String(s.clone()))
                .collect(),
        )
    };
    let types: Vec<gguf_file::Value> = (0..tokens.len())
        .map(|i| gguf_file::Value::I32(if i < 3 { 3 } else { 1 }))
        .collect();
    let meta: Vec<(&str, gguf_file::Value)> = vec![
        (
            "general.architecture",
            gguf_file::Value::String("llama".into()),
        ),
        ("llama.block_count", gguf_file::Value::U32(2)),
        ("llama.embedding_length", gguf_file::Value::U32(64)),
        ("llama.feed_forward_length", gguf_file::Value::U32(112)),
        ("llama.attention.head_count", gguf_file::Value::U32(4)),
        ("llama.attention.head_count_kv", gguf_file::Value::U32(2)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            gguf_file::Value::F32(1e-6),
        ),
        ("llama.rope.freq_base", gguf_file::Value::F32(10000.0)),
        ("llama.context_length", gguf_file::Value::U32(256)),
        (
            "tokenizer.ggml.model",
            gguf_file::Value::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.pre",
            gguf_file::Value::String("default".into()),
        ),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        ("tokenizer.ggml.merges", strings(&merges)),
        ("tokenizer.ggml.token_type", gguf_file::Value::Array(types)),
        ("tokenizer.ggml.bos_token_id", gguf_file::Value::U32(0)),
        ("tokenizer.ggml.eos_token_id", gguf_file::Value::U32(2)),
        (
            "tokenizer.chat_template",
            gguf_file::Value::String(CHATML.into()),
        ),
    ];
    let meta_refs: Vec<(&str, &gguf_file::Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &meta_refs, &tensor_refs).expect("writing the seed GGUF");
    out.into_inner()
}

const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// tokenizer.json (byte-level BPE over [`vocab`]), `0xFF`, tokenizer_config.json with a
/// ChatML template.
pub fn tokenizer() -> Vec<u8> {
    let (tokens, merges) = vocab();
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), serde_json::json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            serde_json::json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let tok = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges}
    });
    let cfg = serde_json::json!({
        "bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "add_bos_token": false, "chat_template": CHATML
    });
    let mut out = serde_json::to_vec(&tok).expect("json");
    out.push(0xFF);
    out.extend(serde_json::to_vec(&cfg).expect("json"));
    out
}

pub fn jsonl() -> Vec<u8> {
    concat!(
        "{\"question\": \"Tom has 3 apples and buys 4 more. How many?\", \"answer\": \"3 + 4 = <<3+4=7>>7\\n#### 7\"}\n",
        "{\"problem\": \"Find $x$ if $2x = 10$.\", \"solution\": \"So $x = \\\\boxed{5}$.\", \"answer\": \"5\"}\n",
        "{\"id\": 3, \"problem\": \"What is 1,000 + 1?\", \"answer\": 1001}\n",
        "{\"prompt\": \"Add 2 and 2.\", \"response\": \"2 + 2 = 4. The answer is 4.\"}\n",
    )
    .as_bytes()
    .to_vec()
}

pub fn verify() -> Vec<u8> {
    b"So the answer is $\\boxed{\\frac{1}{2}}$ and \\(x \\ge 3\\).\n{\"answer\": \"0.5\"}".to_vec()
}
