//! `egi fingerprint`: the entropy / gradient-influence fingerprint of a model on a set of
//! responses (given, generated from a benchmark file, or the built-in demo), with resumable
//! progress, summary statistics, plots, and `egi fingerprint compare`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use egi_generate::{generate_with_progress, Request, SamplingParams};
use egi_model::text::encode_prompt;
use egi_probe::fingerprint::{Correlation, Granularity, StepMode};
use egi_probe::report::PairBy;
use egi_probe::run::{FingerprintRun, RunSettings, Text};
use egi_probe::{Norm, ProbeOptions, Proj, Target};
use serde_json::Value;

use crate::common::progress;
use egi_report::fs::{clear_complete, completed_with, mark_complete};
use egi_report::shard::Manifest;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub sub: Option<Sub>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand)]
pub enum Sub {
    /// Compare fingerprint runs (models or checkpoints): one table and one plot of rho with
    /// CIs, and paired permutation tests when the runs scored the same texts.
    Compare(CompareArgs),
    /// Join the output directories of a sharded run (`--shard K/N`) into what one run over
    /// the whole input writes (responses.jsonl in input order, summary.json from all
    /// records, plots). Refuses, naming it, a shard that is missing, unfinished, given twice
    /// or from another input or settings; then nothing is written.
    Merge(crate::common::MergeArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Model: GGUF file, HF directory, `default`, or hub id.
    #[arg(long, default_value = "default")]
    model: String,
    /// JSONL of the texts to fingerprint: {"id", "prompt", "response"} (the prompt as given),
    /// or {"id", "problem", "solution"} (`egi data arith --solutions`; prompt from --template).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Prompt template for problems (--generate's, and --input's {"problem", "solution"}
    /// records): plain (the problem as it is), boxed (eval's and sft's default: "Please reason
    /// step by step, and put your final answer within \boxed{}."), or a text with {problem}.
    /// Plain by default, so a fingerprint is of the question alone; pass boxed to measure a
    /// model on the prompts it was evaluated or fine-tuned with.
    #[arg(long, default_value = "plain")]
    template: String,
    /// Output directory: responses.jsonl, summary.json, plots (SVG and PNG). Required.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Use prompts as they are instead of the chat template.
    #[arg(long)]
    raw: bool,
    /// Use only the first N texts of --input.
    #[arg(long, requires = "input")]
    limit: Option<usize>,
    /// Let the model write the responses first, to the prompts of --data.
    #[arg(long, requires = "data")]
    generate: bool,
    /// Prompts for --generate: a bundled benchmark (gsm8k, math500, ...; `egi data list`) or a
    /// JSONL / JSON file with "question", "problem" or "prompt".
    #[arg(long)]
    data: Option<String>,
    /// Number of prompts taken from --data (the first N).
    #[arg(long, default_value_t = 16)]
    n_prompts: usize,
    /// Built-in set of short reasoning prompts, answered by the model (the README demo).
    #[arg(long, conflicts_with_all = ["input", "generate"])]
    demo: bool,
    /// Generation: tokens per response (default 160; 80 with --demo).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Generation: temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scalar whose gradient is measured.
    #[arg(long, value_enum, default_value = "logit")]
    target: Target,
    /// Matrix norm of each gradient.
    #[arg(long, value_enum, default_value = "nuclear")]
    norm: Norm,
    /// Projections measured, comma-separated subset of q,k,v,o.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "q,k,v,o")]
    projections: Vec<Proj>,
    /// Layers measured: `all`, or a list/ranges such as 0-3,10.
    #[arg(long, default_value = "all")]
    layers: String,
    /// Level of the headline correlation and verdict.
    #[arg(long, value_enum, default_value = "step")]
    granularity: Granularity,
    /// Step delimiter (the delimiter ends its step). Escapes \n and \t are understood.
    #[arg(long, default_value = "\\n")]
    step_delim: String,
    /// How a step's influence is obtained.
    #[arg(long, value_enum, default_value = "mean")]
    step_mode: StepMode,
    #[arg(long, value_enum, default_value = "spearman")]
    correlation: Correlation,
    /// Also write the per-matrix norms of every token ("nuclear": 4 x layers values).
    #[arg(long)]
    per_matrix: bool,
    /// Targets per batched backward pass (memory grows with it).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Responses longer than this many tokens (prompt + response) are skipped and counted.
    #[arg(long, default_value_t = 2048)]
    max_tokens: usize,
    /// Bootstrap resamples for the confidence intervals.
    #[arg(long, default_value_t = 2000)]
    bootstrap: usize,
    /// Discard an interrupted run in --out instead of resuming it.
    #[arg(long)]
    fresh: bool,
    /// Measure only shard K of N of --input: its texts K, K+N, K+2N, ... (1-based, in input
    /// order, after --limit), for a corpus spread over machines (a Slurm array, Ray workers).
    /// Each shard gets its own --out, which records which shard of which input it holds
    /// (shard.json); `egi fingerprint merge DIR... --out DIR` then writes what one run over the
    /// whole input writes. docs/scale.md.
    #[arg(long, value_name = "K/N", requires = "input", conflicts_with_all = ["generate", "demo"])]
    shard: Option<egi_report::shard::Shard>,
    /// Stop after this many responses, as if interrupted (tests of resuming).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Fingerprint output directories.
    #[arg(required = true, num_args = 2..)]
    dirs: Vec<PathBuf>,
    /// Where to write compare.json and the plot.
    #[arg(long, default_value = "fingerprint-compare")]
    out: PathBuf,
    /// What makes two responses a pair for the paired tests against the first run: `text`
    /// (same id, prompt and response: one set of texts scored by several models) or `prompt`
    /// (same id and prompt: each model's own answer to the same prompts, e.g. checkpoints).
    #[arg(long, value_enum, default_value = "text")]
    pair_by: PairBy,
}

pub fn run(a: Args) -> Result<()> {
    match a.sub {
        Some(Sub::Compare(c)) => compare(c),
        Some(Sub::Merge(m)) => merge(m),
        None => run_probe(a.run),
    }
}

/// Short reasoning prompts for the demo (written for egi; not from any benchmark).
const DEMO_PROMPTS: [&str; 6] = [
    "A baker makes 24 muffins and sells 15 of them. How many muffins are left? Explain step by step.",
    "Sam has 5 boxes with 6 pencils in each box. He gives away 7 pencils. How many pencils does he have now? Think step by step.",
    "A train travels 80 km in 2 hours. At the same speed, how far does it travel in 5 hours? Show your steps.",
    "Lena reads 12 pages a day. How many days does she need to read a 96-page book? Explain your reasoning.",
    "A shirt costs 20 dollars and is on sale for 25 percent off. What is the sale price? Work it out step by step.",
    "Tom is twice as old as Mia. Mia is 7. How old will Tom be in 3 years? Think step by step.",
];

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\t", "\t")
}

/// Prompts of a data set: JSONL lines or a JSON array, field question/problem/prompt.
fn read_bench_prompts(spec: &str, n: usize) -> Result<Vec<(String, String)>> {
    let src = egi_eval::data::resolve(spec, None)?;
    let rows = egi_eval::data::records(&src)?;
    let stem = src.stem();
    let mut out = vec![];
    for (i, r) in rows.iter().take(n).enumerate() {
        let p = ["question", "problem", "prompt"]
            .iter()
            .find_map(|k| r.get(*k).and_then(|v| v.as_str()))
            .with_context(|| {
                format!(
                    "{}: record {} has no \"question\", \"problem\" or \"prompt\" field",
                    src.label(),
                    i + 1
                )
            })?;
        out.push((format!("{stem}-{i}"), p.to_string()));
    }
    if out.is_empty() {
        bail!("{}: no records", src.label());
    }
    Ok(out)
}

fn opts_from(a: &RunArgs, n_layers: usize) -> Result<ProbeOptions> {
    if a.projections.is_empty() {
        bail!("--projections: name at least one of q, k, v, o");
    }
    Ok(ProbeOptions {
        target: a.target,
        norm: a.norm,
        projections: a.projections.clone(),
        layers: egi_probe::fingerprint::parse_layers(&a.layers, n_layers).context("--layers")?,
        granularity: a.granularity,
        step_delim: unescape(&a.step_delim),
        step_mode: a.step_mode,
        correlation: a.correlation,
        batch: a.batch.max(1),
    })
}

/// The settings `egi fingerprint FLAGS...` would measure with, for a model of `n_layers`
/// layers: the Python package's `Model.fingerprint` passes its options as these flags, so
/// both read them with one parser, one set of defaults and the same error messages.
pub fn settings_from_flags(model: &str, n_layers: usize, flags: &[String]) -> Result<RunSettings> {
    #[derive(clap::Parser)]
    #[command(name = "egi fingerprint", no_binary_name = true)]
    struct Flags {
        #[command(flatten)]
        run: RunArgs,
    }
    let a = <Flags as clap::Parser>::try_parse_from(flags)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().lines().next().unwrap_or("").trim()))?
        .run;
    Ok(RunSettings {
        model: model.to_string(),
        options: opts_from(&a, n_layers)?,
        raw: a.raw,
        per_matrix: a.per_matrix,
        max_tokens: a.max_tokens,
        bootstrap: a.bootstrap,
        fresh: false,
    })
}

fn run_probe(a: RunArgs) -> Result<()> {
    let t_start = Instant::now();
    let Some(out_dir) = a.out.clone() else {
        bail!("--out DIR is required (where responses.jsonl, summary.json and the plots go)");
    };
    if a.input.is_none() && !a.generate && !a.demo {
        bail!("give the texts: --input FILE.jsonl, or --generate --data BENCH_FILE, or --demo");
    }
    let _lock = crate::lock::lock_dir(&out_dir)?;
    let key = run_key(&a)?;
    if !a.fresh && completed_with(&out_dir, &key, &["summary.json", "responses.jsonl"]) {
        crate::common::say_complete(&out_dir, "summary.json, responses.jsonl and the plots");
        return Ok(());
    }
    clear_complete(&out_dir);
    let m = crate::common::load_model(&a.model)?;
    let tok = m.tokenizer()?;
    if !a.raw && tok.chat_template.is_none() {
        bail!(
            "{}: this model has no chat template; pass --raw to use the prompts as they are",
            m.source.path().display()
        );
    }
    let texts: Vec<Text> = if let Some(input) = &a.input {
        egi_eval::data::read_response_lines(input, &a.template)?
            .into_iter()
            .map(|l| Text {
                id: match &l.id {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                },
                prompt: l.prompt,
                response: l.response,
            })
            .take(a.limit.unwrap_or(usize::MAX))
            .collect()
    } else {
        let prompts: Vec<(String, String)> = if a.demo {
            DEMO_PROMPTS
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("demo-{i}"), p.to_string()))
                .collect()
        } else {
            read_bench_prompts(a.data.as_ref().unwrap(), a.n_prompts)?
                .into_iter()
                .map(|(id, p)| Ok((id, egi_eval::prompt::render(&a.template, &p)?)))
                .collect::<Result<_>>()?
        };
        generate_responses(&m, &a, prompts)?
    };
    let settings = RunSettings {
        model: a.model.clone(),
        options: opts_from(&a, m.model.cfg.num_layers)?,
        raw: a.raw,
        per_matrix: a.per_matrix,
        max_tokens: a.max_tokens,
        bootstrap: a.bootstrap,
        fresh: a.fresh,
    };
    let n_layers = m.model.cfg.num_layers;
    let (texts, shard) = match (a.shard, &a.input) {
        (Some(shard), Some(input)) => {
            let items = texts.len();
            let key = serde_json::json!({
                "input_sha256": egi_eval::data::DataSource::File(input.clone()).sha256()?, "limit": a.limit,
                "template": a.template, "model": settings.model, "options": settings.options,
                "raw": a.raw, "per_matrix": a.per_matrix, "max_tokens": a.max_tokens,
                "bootstrap": a.bootstrap, "n_layers": n_layers,
            });
            let (texts, positions) = shard.take(texts);
            eprintln!(
                "shard {shard}: {} of the input's {items} texts",
                texts.len()
            );
            (texts, Some(Manifest::new(shard, key, items, positions)))
        }
        _ => (texts, None),
    };
    let mut run = FingerprintRun::open(&out_dir, settings, texts)?;
    if let Some(m) = shard {
        run = run.as_shard(m)?;
    }
    if run.resumed() > 0 {
        eprintln!("resuming: {} responses already done", run.resumed());
    }
    let pending = run.pending();
    let pb = progress(pending.len() as u64, "responses");
    for (k, i) in pending.into_iter().enumerate() {
        if a.stop_after == Some(k) {
            pb.finish_and_clear();
            eprintln!("stopped after {k} responses; run the same command again to resume");
            return Ok(());
        }
        run.measure(&m.model, tok, i)?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    let (records, summary) = run.finish(&m.model, t_start.elapsed().as_secs_f64())?;
    mark_complete(&out_dir, &key)?;
    println!("{}", egi_probe::run::table(&records, &summary, &out_dir));
    Ok(())
}

/// What decides a run's outputs, known before the model is loaded: the model as named, the
/// texts (the input file's sha256, or how they are generated) and every option that changes
/// a number. A finished run with the same key is not done again.
fn run_key(a: &RunArgs) -> Result<Value> {
    let texts = match (&a.input, a.demo) {
        (Some(input), _) => serde_json::json!({"input_sha256":
            egi_eval::data::DataSource::File(input.clone()).sha256()?, "limit": a.limit}),
        (None, demo) => {
            serde_json::json!({"demo": demo, "data": a.data, "data_sha256": match &a.data {
                Some(d) => Some(egi_eval::data::resolve(d, None)?.sha256()?),
                None => None,
            }, "n_prompts": a.n_prompts, "max_new_tokens": a.max_new_tokens,
            "temperature": a.temperature, "top_p": a.top_p, "top_k": a.top_k, "seed": a.seed})
        }
    };
    Ok(serde_json::json!({
        "command": "fingerprint", "model": a.model, "texts": texts, "template": a.template,
        "raw": a.raw, "target": a.target, "norm": a.norm, "projections": a.projections,
        "layers": a.layers, "granularity": a.granularity, "step_delim": unescape(&a.step_delim),
        "step_mode": a.step_mode, "correlation": a.correlation, "per_matrix": a.per_matrix,
        "max_tokens": a.max_tokens, "bootstrap": a.bootstrap,
        "shard": a.shard.map(|s| s.to_string()),
    }))
}

fn generate_responses(
    m: &egi_model::LoadedModel,
    a: &RunArgs,
    prompts: Vec<(String, String)>,
) -> Result<Vec<Text>> {
    let tok = m.tokenizer()?;
    let max_new = a.max_new_tokens.unwrap_or(if a.demo { 80 } else { 160 });
    let reqs: Vec<Request> = prompts
        .iter()
        .enumerate()
        .map(|(i, (_, p))| {
            Ok(Request {
                prompt_ids: encode_prompt(tok, p, a.raw)?,
                params: SamplingParams {
                    temperature: a.temperature,
                    top_p: a.top_p,
                    top_k: a.top_k,
                    max_new_tokens: max_new,
                    stop: vec![],
                    seed: a.seed + i as u64,
                },
            })
        })
        .collect::<Result<_>>()?;
    let pb = progress((reqs.len() * max_new) as u64, "generating");
    let mut out = vec![];
    let mut cut = 0;
    // Batches of 8 prompts keep the left padding small.
    for (chunk_r, chunk_p) in reqs.chunks(8).zip(prompts.chunks(8)) {
        let c = generate_with_progress(&m.model, tok, &m.eos_ids(), chunk_r, &mut |n| {
            pb.inc(n as u64)
        })?;
        for (comp, (id, p)) in c.into_iter().zip(chunk_p) {
            cut += usize::from(comp.finish_reason == egi_generate::FinishReason::Length);
            out.push(Text {
                id: id.clone(),
                prompt: p.clone(),
                response: comp.text.trim_end().to_string(),
            });
        }
    }
    pb.finish_and_clear();
    if cut > 0 {
        eprintln!(
            "note: {cut} of {} responses stop at the {max_new}-token limit, mid-sentence if need \
             be (--max-new-tokens sets it); the fingerprint measures them as they are",
            out.len()
        );
    }
    Ok(out)
}

fn merge(a: crate::common::MergeArgs) -> Result<()> {
    let _lock = crate::lock::lock_dir(&a.out)?;
    let (records, summary) = egi_probe::run::merge(&a.dirs, &a.out)?;
    println!("{}", egi_probe::run::table(&records, &summary, &a.out));
    Ok(())
}

fn compare(c: CompareArgs) -> Result<()> {
    let cmp = egi_probe::report::compare(&c.dirs, c.pair_by)?;
    println!("{}", egi_probe::run::compare_table(&cmp, c.pair_by));
    egi_probe::report::write_compare(&c.out, &cmp)?;
    println!(
        "wrote {}/compare.json and compare.svg/.png",
        c.out.display()
    );
    Ok(())
}
