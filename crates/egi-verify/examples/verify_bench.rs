//! Throughput: verify all GSM8K test golds against themselves and against a
//! shuffled copy; print verifications/second and the worst single case.
//!
//! cargo run --release -p egi-verify --example verify_bench [-- PATH/gsm8k/test.jsonl]

use egi_verify::{gold_from_record, verify, Options, Status};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        format!(
            "{}/../egi-eval/data/gsm8k/test.jsonl",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let recs: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let golds: Vec<String> = recs
        .iter()
        .map(|r| gold_from_record(r).expect("gold"))
        .collect();
    // the full GSM8K solutions as "responses" (extraction via ####) and the bare golds
    let solutions: Vec<String> = recs
        .iter()
        .map(|r| r["answer"].as_str().unwrap().to_string())
        .collect();
    let mut shuffled = golds.clone();
    shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(0));
    let opts = Options::default();

    let rounds = 5;
    let mut total = 0usize;
    let mut worst = (Duration::ZERO, String::new(), String::new());
    let mut counts = [0usize; 4];
    let start = Instant::now();
    for _ in 0..rounds {
        for (pairs_a, pairs_b) in [
            (&golds, &golds),
            (&golds, &shuffled),
            (&solutions, &golds),
            (&solutions, &shuffled),
        ] {
            for (a, g) in pairs_a.iter().zip(pairs_b.iter()) {
                let t = Instant::now();
                let v = verify(a, g, &opts);
                let el = t.elapsed();
                if el > worst.0 {
                    worst = (el, a.clone(), g.clone());
                }
                counts[v.status as usize] += 1;
                total += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let per_round = counts.map(|c| c / rounds);
    println!("GSM8K golds: {}", golds.len());
    println!(
        "verified {total} pairs in {secs:.3} s on 1 thread: {:.0} verifications/s",
        total as f64 / secs
    );
    println!(
        "status per round [correct, wrong, unparsable_answer, unparsable_gold] = {per_round:?}"
    );
    let short = |s: &str| s.chars().take(60).collect::<String>().replace('\n', " ");
    println!(
        "worst single case: {:?} ({:?} vs {:?})",
        worst.0,
        short(&worst.1),
        short(&worst.2)
    );
    assert_eq!(per_round[Status::UnparsableGold as usize], 0);
    assert_eq!(per_round[Status::UnparsableAnswer as usize], 0);
}
