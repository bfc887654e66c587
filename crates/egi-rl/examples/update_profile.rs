//! Where the loss forward/backward of one packed group spends its time (default model).
//! cargo run --release -p egi-rl --example update_profile
use std::time::Instant;

use candle_core::{DType, Device};
use egi_rl::policy::{pack, token_logprobs};

fn main() -> anyhow::Result<()> {
    let mut m = egi_model::load("default", DType::F32, &Device::Cpu)?.model;
    let vars = m.set_trainable(|_| true)?;
    let prompt: Vec<u32> = (0..80).map(|i| 100 + i).collect();
    let resp: Vec<Vec<u32>> = (0..4)
        .map(|k| (0..64).map(|i| 1000 + 7 * i + k).collect())
        .collect();
    let refs: Vec<&[u32]> = resp.iter().map(|r| r.as_slice()).collect();
    let pk = pack(&prompt, &refs);
    for chunk in [256usize, 1024] {
        for _ in 0..2 {
            let t0 = Instant::now();
            let (lp, _) = token_logprobs(&m, &pk, chunk)?;
            let loss = lp.sum_all()?;
            let t1 = Instant::now();
            let g = loss.backward()?;
            let t2 = Instant::now();
            let n = vars.iter().filter(|v| g.get(v).is_some()).count();
            println!(
                "chunk {chunk}: {} positions, {} targets: forward {:.2} s, backward {:.2} s ({n} grads)",
                pk.ids.len(),
                pk.tgt.len(),
                (t1 - t0).as_secs_f64(),
                (t2 - t1).as_secs_f64()
            );
        }
    }
    // Body only (no vocabulary projection).
    let ids = candle_core::Tensor::from_slice(&pk.ids, (1, pk.ids.len()), &Device::Cpu)?;
    let attn = egi_model::AttnInput::packed(pk.prefix, &pk.blocks, DType::F32, &Device::Cpu)?;
    let t0 = Instant::now();
    let h = m.forward_hidden(&ids, &attn)?;
    let loss = h.sum_all()?;
    let t1 = Instant::now();
    let _g = loss.backward()?;
    println!(
        "body only: forward {:.2} s, backward {:.2} s",
        (t1 - t0).as_secs_f64(),
        t0.elapsed().as_secs_f64() - (t1 - t0).as_secs_f64()
    );
    Ok(())
}
