//! Choosing the next token from a row of logits: greedy, temperature, top-k, top-p.

use egi_model::fastops;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f64,
    /// Nucleus sampling: smallest set of tokens whose probability reaches `top_p` (1 = off).
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    pub max_new_tokens: usize,
    /// Generation stops when the text contains one of these; the text is cut before it.
    pub stop: Vec<String>,
    /// Seed of this request's random stream: the same seed gives the same completion.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens: 256,
            stop: vec![],
            seed: 0,
        }
    }
}

/// log-sum-exp of a row (sums in f64).
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let mut e = vec![0f32; logits.len()];
    let m = fastops::row_max(logits);
    m as f64 + fastops::exp_row(logits, m, 1.0, &mut e).ln()
}

fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best
}

/// Pick a token; returns it with its log-probability under the model's own distribution
/// (temperature 1, no truncation), which is what scoring and RL ratios need.
pub fn sample(logits: &[f32], p: &SamplingParams, rng: &mut ChaCha8Rng) -> (u32, f64) {
    // One vectorised pass of exp(z - max) serves the log-probability and, at temperature 1
    // (RL rollouts), the sampling weights too.
    let m = fastops::row_max(logits);
    let mut e = vec![0f32; logits.len()];
    let s = fastops::exp_row(logits, m, 1.0, &mut e);
    let lse = m as f64 + s.ln();
    let id = if p.temperature <= 0.0 {
        argmax(logits)
    } else {
        let inv_t = (1.0 / p.temperature) as f32;
        let total = if inv_t == 1.0 {
            s
        } else {
            fastops::exp_row(logits, m, inv_t, &mut e)
        };
        sample_tempered(&e, total, p, rng)
    };
    (id as u32, logits[id] as f64 - lse)
}

/// `w`: the unnormalised weights exp((z - max) / T), summing to `total`.
fn sample_tempered(w: &[f32], total: f64, p: &SamplingParams, rng: &mut ChaCha8Rng) -> usize {
    let truncate = p.top_k > 0 || p.top_p < 1.0;
    if !truncate {
        return draw(w.iter().map(|&x| x as f64).enumerate(), total, rng);
    }
    // Candidates in decreasing probability. A full sort of the vocabulary per token is the
    // expensive part; the nucleus almost always lies within the top few hundred, so sort only
    // those unless they do not reach top_p.
    let mut idx: Vec<usize> = (0..w.len()).collect();
    let mut head = if p.top_k > 0 {
        p.top_k.min(w.len())
    } else {
        512.min(w.len())
    };
    loop {
        if head < idx.len() {
            idx.select_nth_unstable_by(head, |&a, &b| w[b].total_cmp(&w[a]));
        }
        let mut top: Vec<usize> = idx[..head].to_vec();
        top.sort_unstable_by(|&a, &b| w[b].total_cmp(&w[a]));
        let mut keep = top.len();
        if p.top_p < 1.0 {
            let mut cum = 0.0;
            let mut reached = false;
            for (i, &t) in top.iter().enumerate() {
                cum += w[t] as f64 / total;
                if cum >= p.top_p {
                    keep = i + 1;
                    reached = true;
                    break;
                }
            }
            if !reached && head < w.len() && p.top_k == 0 {
                head = w.len();
                continue;
            }
        }
        let kept = &top[..keep];
        let mass: f64 = kept.iter().map(|&t| w[t] as f64).sum();
        return draw(kept.iter().map(|&t| (t, w[t] as f64)), mass, rng);
    }
}

fn draw(items: impl Iterator<Item = (usize, f64)>, total: f64, rng: &mut ChaCha8Rng) -> usize {
    let u: f64 = rng.random::<f64>() * total;
    let mut acc = 0.0;
    let mut last = 0;
    for (i, x) in items {
        acc += x;
        last = i;
        if u < acc {
            return i;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn params(t: f64, top_p: f64, top_k: usize) -> SamplingParams {
        SamplingParams {
            temperature: t,
            top_p,
            top_k,
            ..Default::default()
        }
    }

    #[test]
    fn greedy_and_logprob() {
        let l = [0.0f32, 2.0, 1.0];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (id, lp) = sample(&l, &params(0.0, 1.0, 0), &mut rng);
        assert_eq!(id, 1);
        let z: f64 = l.iter().map(|&x| (x as f64).exp()).sum();
        // The exponentials are f32 (about 1 ulp each), summed in f64.
        assert!((lp - (2.0f64.exp() / z).ln()).abs() < 1e-6);
        // A large vocabulary with a spread of logits: still within 1e-6 of the f64 value.
        let l: Vec<f32> = (0..50_000)
            .map(|i| ((i * 7919) % 2000) as f32 * 0.01 - 9.0)
            .collect();
        let (id, lp) = sample(&l, &params(0.0, 1.0, 0), &mut rng);
        let m = l.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = m + l.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
        assert!((lp - (l[id as usize] as f64 - lse)).abs() < 1e-6);
    }

    #[test]
    fn frequencies_follow_tempered_distribution() {
        // 3 tokens, T = 0.5: probabilities proportional to exp(2 * logit).
        let l = [0.0f32, 0.5, 1.0];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0usize; 3];
        let n = 40_000;
        for _ in 0..n {
            counts[sample(&l, &params(0.5, 1.0, 0), &mut rng).0 as usize] += 1;
        }
        let w: Vec<f64> = l.iter().map(|&x| (2.0 * x as f64).exp()).collect();
        let s: f64 = w.iter().sum();
        for i in 0..3 {
            let f = counts[i] as f64 / n as f64;
            assert!((f - w[i] / s).abs() < 0.01, "{i}: {f} vs {}", w[i] / s);
        }
    }

    #[test]
    fn top_p_and_top_k_truncate() {
        // probs ~ [0.64, 0.23, 0.09, 0.03, 0.01]
        let l = [4.0f32, 3.0, 2.0, 1.0, 0.0];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2000 {
            let (id, _) = sample(&l, &params(1.0, 0.8, 0), &mut rng);
            assert!(id <= 1, "top_p 0.8 keeps tokens 0 and 1, got {id}");
            let (id, _) = sample(&l, &params(1.0, 1.0, 3), &mut rng);
            assert!(id <= 2, "top_k 3 keeps tokens 0..3, got {id}");
        }
        // A nucleus beyond the first 512 candidates falls back to the full sort.
        let flat = vec![0.0f32; 2000];
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4000 {
            seen.insert(sample(&flat, &params(1.0, 0.99, 0), &mut rng).0);
        }
        assert!(seen.len() > 1500, "{}", seen.len());
    }

    #[test]
    fn same_seed_same_draws() {
        let l: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..50)
                .map(|_| sample(&l, &params(0.8, 0.9, 0), &mut rng).0)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
