//! `egi data`: generated data sets. `egi data arith`: seeded arithmetic word problems with
//! exact integer answers, in the problem/answer JSONL that `egi eval --bench FILE` and `--data`
//! read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use egi_eval::arith::{generate, parse_ops, parse_steps, to_jsonl, ArithOptions};

use crate::common::write_atomic;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub sub: DataSub,
}

#[derive(Subcommand)]
pub enum DataSub {
    /// Seeded arithmetic word problems with exact integer answers, as JSONL.
    #[command(
        long_about = "Seeded arithmetic word problems with exact integer answers, as JSONL: one \
{\"id\", \"problem\", \"answer\", \"steps\", \"expression\", \"scenario\"} record per line, \
readable by `egi eval --bench FILE` and `--data FILE`.\n\n\
Each problem chains 1 to 6 operations in a short story (a quantity that changes over time, or a \
chain of comparisons) drawn from 24 scenarios with varied names, units, connectors and \
phrasings. Answers are never negative: subtraction keeps every value positive, division is \
always exact. The same options give the same file; problem i does not depend on --n.",
        after_help = "Examples:\n  \
egi data arith --n 1000 --seed 0 --out arith.jsonl\n  \
egi data arith --n 500 --steps 2 --ops add,sub --max-operand 50 --out arith-2step.jsonl\n  \
egi eval --model default --bench arith.jsonl --limit 200 --greedy --out eval-arith"
    )]
    Arith(ArithArgs),
}

#[derive(clap::Args)]
pub struct ArithArgs {
    /// Number of problems.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Random seed; ids are arith-<seed>-<i>.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Operations per problem: N, or MIN..MAX drawn uniformly (at most 6).
    #[arg(long, default_value = "1..3")]
    steps: String,
    /// Operations to use, comma-separated: add, sub, mul, div.
    #[arg(long, default_value = "add,sub,mul,div")]
    ops: String,
    /// Largest start value and add/sub operand.
    #[arg(long, default_value_t = 20)]
    max_operand: u64,
    /// Largest multiplier and divisor (at least 2).
    #[arg(long, default_value_t = 12)]
    max_factor: u64,
    /// Largest value any step may reach (bounds chains of multiplications).
    #[arg(long, default_value_t = 1000)]
    max_value: u64,
    /// Only these scenarios, comma-separated (e.g. marbles,bus,prices); default all.
    #[arg(long)]
    scenarios: Option<String>,
    /// Output JSONL file (written atomically).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    match a.sub {
        DataSub::Arith(a) => arith(a),
    }
}

fn arith(a: ArithArgs) -> Result<()> {
    let (min_steps, max_steps) = parse_steps(&a.steps).context("--steps")?;
    let o = ArithOptions {
        n: a.n,
        seed: a.seed,
        min_steps,
        max_steps,
        ops: parse_ops(&a.ops).context("--ops")?,
        max_operand: a.max_operand,
        max_factor: a.max_factor,
        max_value: a.max_value,
        scenarios: a
            .scenarios
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    };
    let ps = generate(&o)?;
    write_atomic(&a.out, to_jsonl(&ps).as_bytes())?;
    let mut by: BTreeMap<usize, usize> = BTreeMap::new();
    for p in &ps {
        *by.entry(p.steps).or_default() += 1;
    }
    let counts: Vec<String> = by
        .iter()
        .map(|(k, c)| format!("{c} with {k} step{}", if *k == 1 { "" } else { "s" }))
        .collect();
    eprintln!(
        "wrote {} problems (seed {}) -> {}: {}",
        ps.len(),
        a.seed,
        a.out.display(),
        counts.join(", ")
    );
    Ok(())
}
