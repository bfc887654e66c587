//! `egi bench --probe`: the fingerprint's speed on one model, the oracle path (autograd, one
//! backward per token, full SVDs) against the fast path (batched hand-written backward, small
//! eigenproblems) and step-sum mode on the same texts, with the fast path's error against the
//! oracle and its achieved FLOP rate beside the device's matmul rate.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use egi_model::bench::matmul_rate;
use egi_model::LoadedModel;
use serde::Serialize;

use crate::fingerprint::{fingerprint, StepMode};
use crate::{oracle, ProbeOptions};

/// Built-in probe benchmark texts, (prompt, response) (written for egi).
pub const PROBE_TEXTS: [(&str, &str); 2] = [
    (
        "A shop sells pens at 3 dollars each. Ana buys 7 pens and pays with a 50 dollar bill. How much change does she get?",
        "Each pen costs 3 dollars, so 7 pens cost 7 * 3 = 21 dollars.\nAna pays with 50 dollars.\nHer change is 50 - 21 = 29 dollars.\nThe answer is 29.",
    ),
    (
        "A farmer has 12 cows and buys 8 more. Each cow eats 5 kg of hay a day. How much hay do the cows eat in one day?",
        "The farmer now has 12 + 8 = 20 cows.\nEach cow eats 5 kg of hay, so 20 cows eat 20 * 5 = 100 kg.\nThe cows eat 100 kg of hay a day.",
    ),
];

/// What to time.
#[derive(Clone, Debug)]
pub struct ProbeBenchOptions {
    /// (prompt, response) pairs; `None`: [`PROBE_TEXTS`].
    pub texts: Option<Vec<(String, String)>>,
    /// Tokens per response timed on the (slow) oracle path.
    pub oracle_tokens: usize,
}

/// The probe figures; serialized with the field names of `egi bench --probe --json`.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeBench {
    /// Oracle seconds per response token.
    pub oracle_s_per_token: f64,
    /// Fast path (per-token influences) seconds per response token.
    pub fast_s_per_token: f64,
    /// Step-sum mode seconds per response token.
    pub step_s_per_token: f64,
    /// Oracle time over fast-path time.
    pub speedup_fast: f64,
    /// Oracle time over step-sum time.
    pub speedup_step: f64,
    /// Worst relative error of a fast-path nuclear norm against the oracle's, over the timed
    /// tokens.
    pub worst_rel_err: f64,
    /// The fast path's backward, GFLOP/s achieved (2 x non-embedding params x prefix per
    /// token).
    pub gflops: f64,
    /// The device's matmul rate in the model's dtype, GFLOP/s.
    pub matmul_gflops: f64,
    // For the table only:
    /// The checkpoint measured.
    #[serde(skip)]
    pub model: PathBuf,
    /// Texts measured.
    #[serde(skip)]
    pub texts: usize,
    /// Response tokens of the fast path over all texts.
    #[serde(skip)]
    pub response_tokens: usize,
    /// Tokens timed on the oracle path.
    #[serde(skip)]
    pub oracle_tokens: usize,
    /// candle's thread count.
    #[serde(skip)]
    pub threads: usize,
    /// The dtype as `{:?}` writes it (`F32`, `BF16`).
    #[serde(skip)]
    pub dtype: String,
}

/// Times the fingerprint of every text on `m` in both modes, and the oracle on the first
/// `oracle_tokens` response tokens of each, with [`ProbeOptions::default`].
pub fn probe(m: &LoadedModel, o: &ProbeBenchOptions) -> Result<ProbeBench> {
    let tok = m.tokenizer()?;
    let texts: Vec<(String, String)> = match &o.texts {
        Some(t) => t.clone(),
        None => PROBE_TEXTS
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect(),
    };
    let mm = matmul_rate(m.model.device(), m.model.dtype())?.gflop_s;
    let opts = ProbeOptions::default();
    let matrices = opts.matrices(m.model.cfg.num_layers)?;
    let (mut t_oracle, mut n_oracle) = (0f64, 0usize);
    let (mut t_fast, mut n_fast, mut flops) = (0f64, 0usize, 0f64);
    let (mut t_step, mut n_step) = (0f64, 0usize);
    let mut worst = 0f64;
    for (prompt, response) in &texts {
        let enc = egi_model::text::encode_pair(tok, prompt, response, false)?;
        let fp = fingerprint(
            &m.model,
            &enc.ids,
            enc.n_prompt,
            &enc.char_starts,
            response,
            &opts,
        )?;
        t_fast += fp.seconds;
        n_fast += fp.tokens.len();
        flops += fp.backward_flops;
        let sopts = ProbeOptions {
            step_mode: StepMode::SumLogits,
            ..opts.clone()
        };
        let fs = fingerprint(
            &m.model,
            &enc.ids,
            enc.n_prompt,
            &enc.char_starts,
            response,
            &sopts,
        )?;
        t_step += fs.seconds;
        n_step += fs.tokens.len();
        for t in fp.tokens.iter().take(o.oracle_tokens) {
            let start = Instant::now();
            let want = oracle::gradient_norms(
                &m.model,
                &enc.ids,
                &[(t.pos, t.id)],
                &matrices,
                opts.target,
                opts.norm,
            )?;
            t_oracle += start.elapsed().as_secs_f64();
            n_oracle += 1;
            for (x, y) in t.norms.as_ref().unwrap().iter().zip(&want) {
                worst = worst.max((x - y).abs() / y.abs().max(1e-12));
            }
        }
    }
    let (so, sf, ss) = (
        t_oracle / n_oracle as f64,
        t_fast / n_fast as f64,
        t_step / n_step as f64,
    );
    Ok(ProbeBench {
        oracle_s_per_token: so,
        fast_s_per_token: sf,
        step_s_per_token: ss,
        speedup_fast: so / sf,
        speedup_step: so / ss,
        worst_rel_err: worst,
        gflops: flops / t_fast / 1e9,
        matmul_gflops: mm,
        model: m.source.path().to_path_buf(),
        texts: texts.len(),
        response_tokens: n_fast,
        oracle_tokens: n_oracle,
        threads: candle_core::utils::get_num_threads(),
        dtype: format!("{:?}", m.model.dtype()),
    })
}

impl ProbeBench {
    /// The figures as a header line, a markdown table and two lines on accuracy and FLOP rate
    /// (no final newline).
    pub fn table(&self) -> String {
        let r = self;
        let (so, sf, ss) = (r.oracle_s_per_token, r.fast_s_per_token, r.step_s_per_token);
        [
            format!(
                "egi bench --probe: {} ({} texts, {} response tokens), {} threads",
                r.model.display(),
                r.texts,
                r.response_tokens,
                r.threads
            ),
            "| path | seconds per response token | speed-up vs oracle |".into(),
            "|---|---|---|".into(),
            format!(
                "| oracle: autograd, one backward per token, full SVD ({} tokens) | {so:.3} | 1.0x |",
                r.oracle_tokens
            ),
            format!(
                "| fast, per-token influences | {sf:.3} | {:.1}x |",
                r.speedup_fast
            ),
            format!(
                "| fast, step-sum mode (one gradient per step) | {ss:.4} | {:.0}x |",
                r.speedup_step
            ),
            format!(
                "fast path vs oracle on the timed tokens: worst relative error of a nuclear norm {:.1e}",
                r.worst_rel_err
            ),
            format!(
                "fast path backward: {:.1} GFLOP/s achieved (2 x non-embedding params x prefix per token) vs {:.1} GFLOP/s {} matmul ({:.0}%)",
                r.gflops,
                r.matmul_gflops,
                r.dtype,
                100.0 * r.gflops / r.matmul_gflops
            ),
        ]
        .join("\n")
    }
}
