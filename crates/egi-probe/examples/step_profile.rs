//! Where the step-sum fingerprint of one response spends its time (default model, f32): the
//! fingerprint CorR-PO computes for every rollout.
//! cargo run --release -p egi-probe --example step_profile
use std::time::Instant;

use candle_core::{DType, Device};
use egi_probe::fingerprint::StepMode;
use egi_probe::{fingerprint, ProbeOptions};

fn main() -> anyhow::Result<()> {
    egi_model::alloc::keep_freed_memory(); // as the egi binary does
    if std::env::var("SEQ").is_ok() {
        faer::set_global_parallelism(faer::Par::Seq);
    }
    let m = egi_model::load("default", DType::F32, &Device::Cpu)?;
    let tok = m.tokenizer()?;
    let prompt = "A shop sells pens at 3 dollars each. Ana buys 7 pens and pays with a 50 dollar bill. How much change does she get?";
    let response = "Each pen costs 3 dollars, so 7 pens cost 7 * 3 = 21 dollars.\nAna pays with 50 dollars.\nHer change is 50 - 21 = 29 dollars.\nSo she gets 29 dollars back from the shop.\nThe answer is 29.";
    let enc = egi_model::text::encode_pair(tok, prompt, response, false)?;
    let opts = ProbeOptions {
        step_mode: StepMode::SumLogits,
        ..Default::default()
    };
    println!(
        "{} prompt + {} response tokens",
        enc.n_prompt,
        enc.ids.len() - enc.n_prompt
    );
    for _ in 0..4 {
        let t0 = Instant::now();
        let fp = fingerprint(
            &m.model,
            &enc.ids,
            enc.n_prompt,
            &enc.char_starts,
            response,
            &opts,
        )?;
        println!(
            "{:.3} s, {} steps, rho {:?}",
            t0.elapsed().as_secs_f64(),
            fp.steps.len(),
            fp.rho_step
        );
    }
    Ok(())
}
