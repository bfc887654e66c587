//! Batched generation on the real default model: a request's completion does not depend on
//! the batch it runs in, rows that stop early leave the batch cleanly, and the log-probs it
//! reports equal teacher-forced scoring of the same tokens.

use candle_core::{DType, Device};
use egi_generate::{generate, FinishReason, Request, SamplingParams};

fn model() -> egi_model::LoadedModel {
    egi_model::load("default", DType::F32, &Device::Cpu).unwrap()
}

fn req(tok: &egi_model::Tokenizer, prompt: &str, seed: u64, max_new: usize, t: f64) -> Request {
    let text = tok
        .apply_chat_template(&[egi_model::chat::ChatMessage::user(prompt)], true)
        .unwrap();
    Request {
        prompt_ids: tok.encode(&text, false).unwrap(),
        params: SamplingParams {
            temperature: t,
            top_p: 0.95,
            max_new_tokens: max_new,
            seed,
            ..Default::default()
        },
    }
}

#[test]
fn batch_equals_single_requests_and_rows_leave_early() {
    let m = model();
    let tok = m.tokenizer().unwrap();
    let eos = m.eos_ids();
    // Same prompt length (same template, same question length in tokens) so that batched and
    // single runs do the same arithmetic; different seeds and budgets, so rows finish apart.
    let reqs: Vec<Request> = (0..5)
        .map(|i| {
            req(
                tok,
                "Say hello.",
                100 + i,
                [3, 40, 7, 40, 1][i as usize],
                1.0,
            )
        })
        .collect();
    let batch = generate(&m.model, tok, &eos, &reqs).unwrap();
    for (r, b) in reqs.iter().zip(&batch) {
        let single = generate(&m.model, tok, &eos, std::slice::from_ref(r))
            .unwrap()
            .remove(0);
        assert_eq!(single.token_ids, b.token_ids);
        assert_eq!(single.text, b.text);
        assert_eq!(single.logprobs, b.logprobs);
        assert!(b.token_ids.len() <= r.params.max_new_tokens);
        if b.finish_reason == FinishReason::Length {
            assert_eq!(b.token_ids.len(), r.params.max_new_tokens);
        }
    }
    assert!(batch.iter().any(|c| c.token_ids.len() == 1));
}

#[test]
fn reported_logprobs_equal_teacher_forced_scores_with_left_padding() {
    let m = model();
    let tok = m.tokenizer().unwrap();
    let eos = m.eos_ids();
    // Prompts of different lengths: the short ones are left-padded in the batch.
    let reqs = vec![
        req(tok, "What is 2 + 2?", 1, 12, 0.7),
        req(
            tok,
            "Tom has 3 bags with 4 apples each. How many apples does he have?",
            2,
            12,
            0.7,
        ),
        req(tok, "Hi", 3, 12, 0.0),
    ];
    let out = generate(&m.model, tok, &eos, &reqs).unwrap();
    for (r, c) in reqs.iter().zip(&out) {
        let mut ids = r.prompt_ids.clone();
        ids.extend(&c.token_ids);
        let s = egi_model::score::score_ids(&m.model, &ids, r.prompt_ids.len()).unwrap();
        assert_eq!(s.len(), c.logprobs.len());
        for (a, b) in s.iter().zip(&c.logprobs) {
            assert!(
                (a.logprob - b).abs() < 2e-3,
                "teacher-forced {} vs generated {b}",
                a.logprob
            );
        }
    }
    // Greedy picks the most likely token at every step of the teacher-forced pass.
    let r = &reqs[2];
    let mut ids = r.prompt_ids.clone();
    ids.extend(&out[2].token_ids);
    let x = candle_core::Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = m.model.forward(&x).unwrap().squeeze(0).unwrap();
    let n = r.prompt_ids.len();
    let am: Vec<u32> = logits.argmax(1).unwrap().to_vec1().unwrap();
    for (i, &t) in out[2].token_ids.iter().enumerate() {
        assert_eq!(am[n - 1 + i], t, "greedy token {i} is not the argmax");
    }
}
