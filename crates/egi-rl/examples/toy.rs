//! CorR-PO / GRPO on the digit-sum toy task, printing greedy accuracy every 50 steps:
//! cargo run --release -p egi-rl --example toy -- ALGO BASE STEPS [MAX_DIGIT [LAMBDA]]
//! e.g. `-- corr-po grpo 400 4 0.1` or `-- grpo grpo 400`
#[path = "../tests/support/digit_sum.rs"]
mod digit_sum;
use digit_sum::{tiny, DigitSum};
use egi_model::{config::Arch, GenerationDefaults};
use egi_rl::{Algo, TrainConfig, Trainer};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let task = DigitSum::new(a.get(4).map_or(Ok(4), |s| s.parse())?);
    let dir = tempfile::tempdir()?;
    let cfg = TrainConfig {
        algo: Algo::parse(&a[1])?,
        base: serde_json::from_value(serde_json::json!(a[2]))?,
        data: "digit-sum".into(),
        max_steps: a[3].parse()?,
        group_size: 16,
        batch_prompts: 8,
        max_new_tokens: 3,
        lr: 3e-3,
        save_every: 0,
        seed: 1,
        eval_limit: 25,
        lambda: a.get(5).map_or(Ok(0.1), |s| s.parse())?,
        ..TrainConfig::default()
    };
    let mut tr = Trainer::new(
        cfg,
        tiny(Arch::Llama, 7),
        None,
        GenerationDefaults::default(),
        &task,
        None,
        dir.path(),
        false,
    )?;
    while !tr.done() {
        let m = tr.step()?;
        if tr.step.is_multiple_of(50) {
            let e = tr.evaluate(&task)?;
            println!(
                "{} sample acc {:.3} greedy {} rho {}",
                tr.step, m["accuracy"], e["accuracy"], m["rho_mean"]
            );
        }
    }
    Ok(())
}
