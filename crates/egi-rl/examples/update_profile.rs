//! Where the loss forward/backward of one packed group spends its time (default model):
//! candle's autograd against the hand-written training pass, same group, same loss; then the
//! optimizer step.
//! cargo run --release -p egi-rl --example update_profile
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use egi_rl::policy::{pack, token_logprobs, LogprobPass};

fn main() -> anyhow::Result<()> {
    egi_model::alloc::keep_freed_memory(); // as the egi binary does
    let mut m = egi_model::load("default", DType::F32, &Device::Cpu)?.model;
    let vars = m.set_trainable(|_| true)?;
    let prompt: Vec<u32> = (0..80).map(|i| 100 + i).collect();
    let resp: Vec<Vec<u32>> = (0..4)
        .map(|k| (0..64).map(|i| 1000 + 7 * i + k).collect())
        .collect();
    let refs: Vec<&[u32]> = resp.iter().map(|r| r.as_slice()).collect();
    let pk = pack(&prompt, &refs);
    let n = pk.tgt.len();
    let named = vars
        .iter()
        .enumerate()
        .map(|(i, v)| (m.params()[i].name.clone(), v.clone()))
        .collect();
    let mut opt = egi_rl::optim::AdamW::new(Default::default(), named)?;
    println!("{} positions, {n} targets", pk.ids.len());
    // `-- fused`: the hand-written pass only (for perf record).
    let only_fused = std::env::args().any(|a| a == "fused");
    let iters: usize = std::env::var("ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for _ in 0..iters {
        let t0 = Instant::now();
        let mut k = 0;
        let mut t1 = t0;
        if !only_fused {
            let (lp, _) = token_logprobs(&m, &pk, 1024)?;
            let loss = lp.sum_all()?.neg()?;
            t1 = Instant::now();
            let g = loss.backward()?;
            k = vars.iter().filter(|v| g.get(v).is_some()).count();
        }
        let t2 = Instant::now();
        let t3 = Instant::now();
        let pass = LogprobPass::record(&m, &pk, 1024)?;
        let t4 = Instant::now();
        let d = Tensor::full(-1f32, n, &Device::Cpu)?;
        let gr = pass.backward(&m, &d, &|_| true)?;
        let t5 = Instant::now();
        let kf = gr.iter().filter(|g| g.is_some()).count();
        // The optimizer step on these gradients (all weights).
        let t6 = Instant::now();
        opt.step(&gr, 1e-6)?;
        let t_opt = t6.elapsed().as_secs_f64();
        println!(
            "autograd: forward {:.2} s, backward {:.2} s ({k} grads) | hand-written: forward {:.2} s, backward {:.2} s ({kf} grads) | AdamW step {t_opt:.2} s",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t4 - t3).as_secs_f64(),
            (t5 - t4).as_secs_f64(),
        );
    }
    Ok(())
}
