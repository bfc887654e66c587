//! `egi data`: the data sets bundled with egi (`list`, `export`) and generated ones
//! (`arith`: seeded arithmetic word problems with exact integer answers, in the problem/answer
//! JSONL that `egi eval --bench FILE` and `--data` read).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use egi_eval::arith::{generate, parse_ops, parse_steps, to_jsonl, ArithOptions};
use egi_eval::bundled::{self, BUNDLED};

use crate::common::write_atomic;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub sub: DataSub,
}

#[derive(Subcommand)]
pub enum DataSub {
    /// The data sets bundled with egi: name, problems, source, license.
    #[command(
        long_about = "The data sets bundled with egi (compiled into the binary, so they work from \
any folder): the five evaluation benchmarks and GSM8K's training split. Each is byte-identical \
to its upstream file; the sha256 shown is checked by egi's tests. Use a name wherever a data set \
is asked for: `egi eval --bench NAME`, `egi train --data NAME`, `egi sft --data gsm8k-train`, \
`egi fingerprint --generate --data NAME`.",
        after_help = "Examples:\n  egi data list\n  egi data list --json\n  \
egi data export math500 --out math500.jsonl\n  egi data export aime24 --license"
    )]
    List(ListArgs),
    /// Write a bundled data set (or its license text) to a file or standard output.
    Export(ExportArgs),
    /// Seeded arithmetic word problems with exact integer answers, as JSONL.
    #[command(
        long_about = "Seeded arithmetic word problems with exact integer answers, as JSONL: one \
{\"id\", \"problem\", \"answer\", \"steps\", \"expression\", \"scenario\"} record per line, \
readable by `egi eval --bench FILE` and `--data FILE`.\n\n\
Each problem chains 1 to 6 operations in a short story (a quantity that changes over time, or a \
chain of comparisons) drawn from 24 scenarios with varied names, units, connectors and \
phrasings. Answers are never negative: subtraction keeps every value positive, division is \
always exact. The same options give the same file; problem i does not depend on --n.\n\n\
--solutions adds a worked solution to every record (\"solution\": one line per step, each \
ending in the step's value, then the answer in \\boxed{}), in several layouts and wordings: \
traces for `egi sft --data FILE`. The problems are the same with and without it.",
        after_help = "Examples:\n  \
egi data arith --n 1000 --seed 0 --out arith.jsonl\n  \
egi data arith --n 500 --steps 2 --ops add,sub --max-operand 50 --out arith-2step.jsonl\n  \
egi data arith --n 5000 --steps 1..4 --solutions --out traces.jsonl\n  \
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
    /// Add a worked solution to each record ("solution": a line per step ending in its value,
    /// then \boxed{answer}); the problems stay the same.
    #[arg(long)]
    solutions: bool,
    /// Output JSONL file (written atomically).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// One JSON object per set (name, file, what, problems, source, license, sha256) instead
    /// of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The set's name (`egi data list`).
    name: String,
    /// Output file (written atomically); standard output if omitted.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The license text instead of the data.
    #[arg(long)]
    license: bool,
}

pub fn run(a: Args) -> Result<()> {
    match a.sub {
        DataSub::List(a) => list(a),
        DataSub::Export(a) => export(a),
        DataSub::Arith(a) => arith(a),
    }
}

fn list(a: ListArgs) -> Result<()> {
    if a.json {
        for b in &BUNDLED {
            let v = serde_json::json!({"name": b.name, "file": b.file, "what": b.what,
                "problems": b.problems, "source": b.source, "license": b.license, "sha256": b.sha256});
            println!("{v}");
        }
        return Ok(());
    }
    let w = BUNDLED.iter().map(|b| b.name.len()).max().unwrap_or(4);
    let lw = BUNDLED.iter().map(|b| b.license.len()).max().unwrap_or(7);
    println!(
        "{:w$}  {:>8}  {:lw$}  source",
        "name", "problems", "license"
    );
    for b in &BUNDLED {
        println!(
            "{:w$}  {:>8}  {:lw$}  {}",
            b.name, b.problems, b.license, b.source
        );
    }
    println!(
        "\nUse a name wherever a data set is asked for (egi eval --bench, egi train --data, egi sft \
--data, egi fingerprint --data); `egi data export NAME` writes the file, `--license` its license."
    );
    Ok(())
}

fn export(a: ExportArgs) -> Result<()> {
    let b = bundled::find(&a.name).with_context(|| {
        format!(
            "{}: not a bundled data set; the names are {}",
            a.name,
            bundled::names()
        )
    })?;
    let text = if a.license {
        std::borrow::Cow::Borrowed(b.license_text)
    } else {
        b.text()
    };
    match &a.out {
        Some(p) => {
            write_atomic(p, text.as_bytes())?;
            eprintln!("wrote {} ({}) -> {}", b.name, b.file, p.display());
        }
        None => {
            use std::io::Write;
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                // `egi data export gsm8k | head` closes the pipe early: not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => r?,
            }
        }
    }
    Ok(())
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
        solutions: a.solutions,
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
