//! `--dtype bf16` on the default model: its log-probs stay within what bf16 itself costs.
//! PyTorch's bf16 differs from its own f32 by 0.16 nats at most on this text (transformers
//! 5.25, CPU); egi's bf16 differed by 2.4 while its RMSNorm and softmax ran in bf16, and by
//! 0.32 once they run in f32 as transformers runs them.

use candle_core::{DType, Device};

#[test]
fn bf16_log_probs_stay_near_f32() {
    let prompt = "A shop sells pens at 3 dollars each. Ana buys 7 pens and pays with a 50 dollar bill. How much change does she get?";
    let response = "Each pen costs 3 dollars, so 7 pens cost 7 * 3 = 21 dollars.\nAna pays with 50 dollars.\nHer change is 50 - 21 = 29 dollars.\nThe answer is 29.";
    let score = |dt| {
        let m = egi_model::load("default", dt, &Device::Cpu).unwrap();
        let enc =
            egi_model::text::encode_pair(m.tokenizer().unwrap(), prompt, response, false).unwrap();
        egi_model::score::score_ids(&m.model, &enc.ids, enc.n_prompt).unwrap()
    };
    let (f32s, bf16s) = (score(DType::F32), score(DType::BF16));
    assert_eq!(f32s.len(), bf16s.len());
    let worst = f32s
        .iter()
        .zip(&bf16s)
        .map(|(a, b)| (a.logprob - b.logprob).abs())
        .fold(0f64, f64::max);
    println!(
        "bf16 vs f32: max |d logprob| {worst:.3} over {} tokens",
        f32s.len()
    );
    assert!(worst < 0.6, "bf16 log-probs drift {worst} nats from f32");
}
