//! `egi bench`: runtime speed on one model, as a table. Every figure is measured in this run;
//! the decode figures sit beside the bound that memory bandwidth sets (all weights are read
//! once per decoding step), measured here too. The measurements live with what they measure:
//! `egi_generate::bench` (runtime), `egi_probe::bench` (`--probe`), `egi_rl::bench`
//! (`--train`), over `egi_model::bench` (bandwidth, matmul rate).

use anyhow::{bail, Result};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "default")]
    pub model: String,
    /// Prompt length for prefill and for forward+backward.
    #[arg(long, default_value_t = 256)]
    pub tokens: usize,
    /// Tokens generated per sequence in the decode measurements.
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
    /// Batch size of the batched decode measurement.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Repetitions; the table reports the median.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Also print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Benchmark the fingerprint probe instead: the oracle path (autograd, one backward per
    /// token, full SVDs) against the fast path (batched hand-written backward, small
    /// eigenproblems) and step-sum mode, on the same texts.
    #[arg(long)]
    pub probe: bool,
    /// Probe benchmark texts: JSONL of {"id", "prompt", "response"} (default: built-in).
    #[arg(long)]
    pub input: Option<std::path::PathBuf>,
    /// Benchmark one RL step instead: GRPO and CorR-PO with --train-prompts prompts x
    /// --group-size responses x --new-tokens tokens (all weights trainable), split by phase.
    #[arg(long)]
    pub train: bool,
    /// Train benchmark: prompts per step.
    #[arg(long, default_value_t = 2)]
    pub train_prompts: usize,
    /// Train benchmark: responses per prompt.
    #[arg(long, default_value_t = 4)]
    pub group_size: usize,
    /// Train benchmark: also time CorR-PO with rho over these layers only (e.g. 22-29).
    #[arg(long)]
    pub fp_layers: Option<String>,
    /// Train benchmark: which rows to time, comma-separated, among grpo, autograd (GRPO with
    /// candle's autograd backward) and corr-po (all layers, and --fp-layers if given). GRPO
    /// always runs first: it is the baseline of the ratio column.
    #[arg(long, default_value = "grpo,autograd,corr-po", value_delimiter = ',')]
    pub rows: Vec<String>,
    /// Probe benchmark: tokens per response timed on the (slow) oracle path.
    #[arg(long, default_value_t = 3)]
    pub oracle_tokens: usize,
}

/// The sizes the measurements divide by or count down from, checked before a model loads.
fn check_sizes(a: &Args) -> Result<()> {
    let checks: [(&str, usize, usize, bool); 7] = [
        ("--reps", a.reps, 1, true),
        ("--tokens", a.tokens, 2, !a.probe && !a.train),
        (
            "--new-tokens",
            a.new_tokens,
            if a.train { 1 } else { 2 },
            !a.probe,
        ),
        ("--batch", a.batch, 1, !a.probe && !a.train),
        ("--oracle-tokens", a.oracle_tokens, 1, a.probe),
        ("--train-prompts", a.train_prompts, 1, a.train),
        ("--group-size", a.group_size, 1, a.train),
    ];
    for (flag, v, min, used) in checks {
        if used && v < min {
            bail!("{flag} {v}: give at least {min}");
        }
    }
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    check_sizes(&a)?;
    if a.probe {
        let m = crate::common::load_model(&a.model)?;
        let texts = match &a.input {
            Some(p) => Some(
                egi_eval::data::read_response_lines(p, "plain")?
                    .into_iter()
                    .map(|l| (l.prompt, l.response))
                    .collect(),
            ),
            None => None,
        };
        let opts = egi_probe::bench::ProbeBenchOptions {
            texts,
            oracle_tokens: a.oracle_tokens,
        };
        let r = egi_probe::bench::probe(&m, &opts)?;
        return show(&r.table(), &r, a.json);
    }
    if a.train {
        egi_rl::bench::check_rows(&a.rows, a.fp_layers.as_deref())?;
        let m = crate::common::load_model(&a.model)?;
        let opts = egi_rl::bench::TrainBenchOptions {
            reps: a.reps,
            train_prompts: a.train_prompts,
            group_size: a.group_size,
            new_tokens: a.new_tokens,
            fp_layers: a.fp_layers,
            rows: a.rows,
        };
        let r = egi_rl::bench::train(&m, &opts, |label, step, s| {
            eprintln!("{label} step {step}: {s:.2} s")
        })?;
        return show(&r.table(), &r, a.json);
    }
    let mut m = crate::common::load_model(&a.model)?;
    let opts = egi_generate::bench::RuntimeOptions {
        tokens: a.tokens,
        new_tokens: a.new_tokens,
        batch: a.batch,
        reps: a.reps,
    };
    let r = egi_generate::bench::runtime(&mut m, &opts)?;
    show(&r.table(), &r, a.json)
}

/// The table, then with `--json` the figures as one JSON object on one line.
fn show(table: &str, r: &impl Serialize, json: bool) -> Result<()> {
    println!("{table}");
    if json {
        println!("{}", serde_json::to_string(r)?);
    }
    Ok(())
}
