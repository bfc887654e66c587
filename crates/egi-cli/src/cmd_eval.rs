//! `egi eval`: accuracy of a model on a math benchmark (Pass@1, unbiased Pass@k, greedy
//! accuracy) with bootstrap CIs over problems; resumable per problem; `egi eval compare`.
//! `egi verify`: the verifier on one pair or a JSONL file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use egi_eval::data::{load_problems, resolve};
use egi_eval::run::{EvalRun, EvalSettings, Sampling};
use egi_verify::{verify, Options};
use serde_json::{json, Value};

use crate::common::{progress, write_atomic};
use egi_report::fs::{clear_complete, completed_with, mark_complete};
use egi_report::shard::Manifest;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub sub: Option<EvalSub>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand)]
pub enum EvalSub {
    /// Paired comparison of two eval runs on the problems both solved (per-problem Pass@1,
    /// sign-flip permutation test).
    Compare(CompareArgs),
    /// Join the output directories of a sharded evaluation (`--shard K/N`) into what one run
    /// over all the problems writes (samples.jsonl in problem order; Pass@k, CIs and verdicts
    /// from all samples). Refuses, naming it, a shard that is missing, unfinished, given
    /// twice or from other data or settings; then nothing is written.
    Merge(crate::common::MergeArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[arg(long, default_value = "default")]
    model: String,
    /// gsm8k, math500, aime24, amc23, aime25 (bundled with egi: `egi data list`), a JSONL/JSON
    /// file with problem/answer fields, or hf:OWNER/REPO/FILE (builds with --features hub).
    #[arg(long)]
    bench: Option<String>,
    /// Output directory: samples.jsonl, summary.json. Required.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Read the named benchmarks from this folder (gsm8k/test.jsonl, math500/test.jsonl, ...)
    /// instead of the copies bundled with egi.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Only the first N problems.
    #[arg(long)]
    limit: Option<usize>,
    /// Samples per problem.
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// Pass@k values to report (each k <= n), comma-separated.
    #[arg(long, default_value = "1")]
    k: String,
    /// Greedy decoding (temperature 0, one sample per problem): greedy accuracy.
    #[arg(long)]
    greedy: bool,
    #[arg(long, default_value_t = 0.6)]
    temperature: f64,
    #[arg(long, default_value_t = 0.95)]
    top_p: f64,
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    /// Prompt: boxed (ask for \boxed{}), plain, or a text containing {problem}.
    #[arg(long, default_value = "boxed")]
    template: String,
    /// Do not wrap the prompt in the chat template.
    #[arg(long)]
    raw: bool,
    /// Sequences generated together.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 2000)]
    bootstrap: usize,
    /// Only accept answers after a closing </think>.
    #[arg(long)]
    require_think_close: bool,
    /// Discard an interrupted run in --out instead of resuming it.
    #[arg(long)]
    fresh: bool,
    /// Evaluate only shard K of N of the problems: problems K, K+N, K+2N, ... (1-based, in
    /// data order, after --limit), for a benchmark spread over machines (a Slurm array, Ray
    /// workers). A sample's seed depends on its problem's id and index only, so the samples
    /// are those of one run over all problems. Each shard gets its own --out (shard.json
    /// records which shard of which data it holds); `egi eval merge DIR... --out DIR` then
    /// writes the single run's outputs. docs/scale.md.
    #[arg(long, value_name = "K/N")]
    shard: Option<egi_report::shard::Shard>,
    /// Stop after this many batches, as if interrupted (tests of resuming).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Two eval output directories (the second is compared against the first).
    #[arg(required = true, num_args = 2)]
    dirs: Vec<PathBuf>,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    match a.sub {
        Some(EvalSub::Compare(c)) => compare(c),
        Some(EvalSub::Merge(m)) => merge(m),
        None => run_eval(a.run),
    }
}

fn parse_ks(s: &str, n: usize) -> Result<Vec<usize>> {
    let mut ks = vec![];
    for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let k: usize = p
            .parse()
            .with_context(|| format!("--k: \"{p}\" is not a number"))?;
        if k == 0 || k > n {
            bail!("--k {k}: needs 1 <= k <= n (--n {n})");
        }
        ks.push(k);
    }
    Ok(ks)
}

fn run_eval(a: RunArgs) -> Result<()> {
    let t0 = Instant::now();
    let Some(out) = a.out.clone() else {
        bail!("--out DIR is required (samples.jsonl and summary.json go there)");
    };
    let _lock = crate::lock::lock_dir(&out)?;
    let Some(bench) = a.bench.clone() else {
        bail!("--bench is required: gsm8k, math500, aime24, amc23, aime25, or a file");
    };
    let n = if a.greedy { 1 } else { a.n.max(1) };
    let ks = parse_ks(&a.k, n)?;
    let data = resolve(&bench, a.data_dir.as_deref())?;
    // What decides the outputs, known before the model is loaded: a finished run with the
    // same key is not done again.
    let key = json!({"command": "eval", "model": a.model, "bench": bench,
        "data_sha256": data.sha256()?, "limit": a.limit, "n": n, "ks": ks, "greedy": a.greedy,
        "temperature": a.temperature, "top_p": a.top_p, "max_new_tokens": a.max_new_tokens,
        "template": a.template, "raw": a.raw, "seed": a.seed, "bootstrap": a.bootstrap,
        "require_think_close": a.require_think_close, "shard": a.shard.map(|s| s.to_string())});
    if !a.fresh && completed_with(&out, &key, &["summary.json", "samples.jsonl"]) {
        crate::common::say_complete(&out, "summary.json and samples.jsonl");
        return Ok(());
    }
    clear_complete(&out);
    let problems = load_problems(&data, a.limit)?;
    egi_eval::prompt::render(&a.template, "x")?;
    let m = crate::common::load_model(&a.model)?;
    let tok = m.tokenizer()?;
    if !a.raw && tok.chat_template.is_none() {
        bail!(
            "{}: this model has no chat template; pass --raw",
            m.source.path().display()
        );
    }
    let mut settings = EvalSettings {
        model: a.model.clone(),
        bench,
        data,
        problems,
        sampling: Sampling {
            n,
            temperature: if a.greedy { 0.0 } else { a.temperature },
            top_p: a.top_p,
            max_new_tokens: a.max_new_tokens,
            seed: a.seed,
        },
        greedy: a.greedy,
        ks,
        template: a.template.clone(),
        raw: a.raw,
        require_think_close: a.require_think_close,
        bootstrap: a.bootstrap,
        fresh: a.fresh,
    };
    let shard = match a.shard {
        Some(shard) => {
            let s = &settings;
            let key = json!({"model": s.model, "bench": s.bench,
                "data_sha256": s.data.sha256()?, "limit": a.limit, "n": n,
                "temperature": s.sampling.temperature, "top_p": s.sampling.top_p,
                "max_new_tokens": s.sampling.max_new_tokens, "template": s.template,
                "raw": s.raw, "seed": s.sampling.seed, "greedy": s.greedy, "ks": s.ks,
                "require_think_close": s.require_think_close, "bootstrap": s.bootstrap});
            let items = settings.problems.len();
            let (taken, positions) = shard.take(std::mem::take(&mut settings.problems));
            eprintln!("shard {shard}: {} of the {items} problems", taken.len());
            settings.problems = taken;
            Some(Manifest::new(shard, key, items, positions))
        }
        None => None,
    };
    let mut run = EvalRun::open(&out, settings)?;
    if let Some(m) = shard {
        run = run.as_shard(m)?;
    }
    if run.resumed() > 0 {
        eprintln!("resuming: {} problems already done", run.resumed());
    }
    let pending = run.pending();
    let pb = progress(pending.len() as u64, "problems");
    for (bi, chunk) in pending.chunks((a.batch / n).max(1)).enumerate() {
        if a.stop_after == Some(bi) {
            pb.finish_and_clear();
            eprintln!("stopped after {bi} batches; run the same command again to resume");
            return Ok(());
        }
        run.run_batch(&m.model, tok, &m.eos_ids(), chunk)?;
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    let summary = run.finish(t0.elapsed().as_secs_f64())?;
    mark_complete(&out, &key)?;
    println!("{}", egi_eval::run::table(&summary));
    println!("wrote {}/samples.jsonl and summary.json", out.display());
    Ok(())
}

fn merge(a: crate::common::MergeArgs) -> Result<()> {
    let _lock = crate::lock::lock_dir(&a.out)?;
    let summary = egi_eval::run::merge(&a.dirs, &a.out)?;
    println!("{}", egi_eval::run::table(&summary));
    println!("wrote {}/samples.jsonl and summary.json", a.out.display());
    Ok(())
}

fn compare(c: CompareArgs) -> Result<()> {
    let load = |d: &PathBuf| -> Result<Value> {
        let p = d.join("summary.json");
        serde_json::from_str(&std::fs::read_to_string(&p).with_context(|| {
            format!(
                "{}: cannot read (an egi eval output directory?)",
                p.display()
            )
        })?)
        .with_context(|| format!("{}: not valid JSON", p.display()))
    };
    let (a, b) = (load(&c.dirs[0])?, load(&c.dirs[1])?);
    let mut j = egi_eval::report::compare(&a, &b)?;
    println!(
        "{} vs {}: {} shared problems",
        c.dirs[1].display(),
        c.dirs[0].display(),
        j["shared_problems"]
    );
    println!(
        "  pass@1 {:.3} vs {:.3}; difference {:+.3} (95% CI {}), paired permutation p = {}",
        j["pass@1_run"].as_f64().unwrap_or(0.0),
        j["pass@1_baseline"].as_f64().unwrap_or(0.0),
        j["mean_difference"].as_f64().unwrap_or(0.0),
        j["difference_ci95"]
            .as_array()
            .map(|c| format!(
                "[{:+.3}, {:+.3}]",
                c[0].as_f64().unwrap_or(0.0),
                c[1].as_f64().unwrap_or(0.0)
            ))
            .unwrap_or("n/a".into()),
        j["p_value"]
            .as_f64()
            .map(|p| format!("{p:.4}"))
            .unwrap_or("n/a".into())
    );
    if let Some(why) = j["uninformative"].as_str() {
        println!("  uninformative: {why}");
    }
    if let Some(path) = &c.out {
        j["run"] = json!(c.dirs[1]);
        j["baseline"] = json!(c.dirs[0]);
        write_atomic(path, serde_json::to_string_pretty(&j)?.as_bytes())?;
    }
    Ok(())
}

/// `egi verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// A model response (or bare answer) to check.
    #[arg(long, requires = "gold", conflicts_with = "input")]
    answer: Option<String>,
    /// The reference answer.
    #[arg(long)]
    gold: Option<String>,
    /// JSONL of {"answer", "gold"}: each line is printed back with "verdict" and the extracted
    /// and normalised forms.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Write the checked lines here (atomically) instead of stdout.
    #[arg(long, requires = "input")]
    out: Option<PathBuf>,
    /// Only accept answers after a closing </think>.
    #[arg(long)]
    require_think_close: bool,
    /// Exit 0 whatever the verdict of --answer/--gold (by default the exit status tells it:
    /// 0 correct, 3 wrong, 4 unparsable answer, 5 unparsable gold; 1 is an error, 2 bad
    /// arguments). With --input the status is 0 unless an error occurs.
    #[arg(long)]
    exit_zero: bool,
}

/// `egi verify --answer --gold`'s exit status for a verdict: a script can branch on it
/// without parsing JSON (1 and 2 stay egi's error and usage statuses).
pub fn verdict_status(verdict: &str) -> i32 {
    match verdict {
        "correct" => 0,
        "wrong" => 3,
        "unparsable_answer" => 4,
        _ => 5,
    }
}

fn verdict_json(answer: &str, gold: &str, o: &Options) -> Value {
    verify(answer, gold, o).to_record()
}

/// `egi verify`; returns the exit status (see [`verdict_status`]).
pub fn verify_cmd(a: VerifyArgs) -> Result<i32> {
    let o = Options {
        require_think_close: a.require_think_close,
        ..Options::default()
    };
    if let (Some(ans), Some(gold)) = (&a.answer, &a.gold) {
        let v = verdict_json(ans, gold, &o);
        println!("{v}");
        return Ok(if a.exit_zero {
            0
        } else {
            verdict_status(v["verdict"].as_str().unwrap_or(""))
        });
    }
    let Some(input) = &a.input else {
        bail!("give --answer TEXT --gold TEXT, or --input FILE.jsonl");
    };
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("{}: cannot read", input.display()))?;
    let mut out = String::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let mut v: Value = serde_json::from_str(l)
            .with_context(|| format!("{}:{}: not valid JSON", input.display(), i + 1))?;
        let (Some(ans), Some(gold)) = (
            v["answer"].as_str().map(String::from),
            v.get("gold").map(|g| {
                g.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| g.to_string())
            }),
        ) else {
            bail!(
                "{}:{}: expected {{\"answer\": string, \"gold\": ...}}",
                input.display(),
                i + 1
            );
        };
        let r = verdict_json(&ans, &gold, &o);
        *counts
            .entry(r["verdict"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
        for (k, x) in r.as_object().unwrap() {
            v[k] = x.clone();
        }
        out.push_str(&format!("{v}\n"));
    }
    match &a.out {
        Some(p) => {
            write_atomic(p, out.as_bytes())?;
            eprintln!(
                "{} -> {}: {}",
                input.display(),
                p.display(),
                serde_json::to_string(&counts)?
            );
        }
        None => print!("{out}"),
    }
    Ok(0)
}
