//! `egi fingerprint`: the entropy / gradient-influence fingerprint of a model on a set of
//! responses (given, generated from a benchmark file, or the built-in demo), with resumable
//! progress, summary statistics, plots, and `egi fingerprint compare`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use egi_generate::{generate_with_progress, Request, SamplingParams};
use egi_model::text::{encode_pair, encode_prompt};
use egi_probe::fingerprint::{Correlation, Granularity, StepMode};
use egi_probe::{fingerprint, Norm, ProbeOptions, Proj, Target};
use serde_json::{json, Value};

use crate::common::{progress, write_atomic, PartialRows};

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
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    Logit,
    Logprob,
    Nll,
}
#[derive(Clone, Copy, ValueEnum)]
enum NormArg {
    Nuclear,
    Frobenius,
}
#[derive(Clone, Copy, ValueEnum)]
enum GranArg {
    Token,
    Step,
}
#[derive(Clone, Copy, ValueEnum)]
enum StepModeArg {
    /// Step influence = mean of its token influences (one gradient per token).
    Mean,
    /// One gradient of the step's summed logits (one backward per step; much cheaper;
    /// grows with the step's length).
    SumLogits,
    /// One gradient of the step's mean logit (as cheap as sum-logits; its value divided by
    /// the step's token count).
    MeanLogit,
}
#[derive(Clone, Copy, ValueEnum)]
enum CorrArg {
    Spearman,
    Pearson,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Model: GGUF file, HF directory, `default`, or hub id.
    #[arg(long, default_value = "default")]
    model: String,
    /// JSONL of {"id", "prompt", "response"}: the texts to fingerprint.
    #[arg(long)]
    input: Option<PathBuf>,
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
    target: TargetArg,
    /// Matrix norm of each gradient.
    #[arg(long, value_enum, default_value = "nuclear")]
    norm: NormArg,
    /// Projections measured, comma-separated subset of q,k,v,o.
    #[arg(long, default_value = "q,k,v,o")]
    projections: String,
    /// Layers measured: `all`, or a list/ranges such as 0-3,10.
    #[arg(long, default_value = "all")]
    layers: String,
    /// Level of the headline correlation and verdict.
    #[arg(long, value_enum, default_value = "step")]
    granularity: GranArg,
    /// Step delimiter (the delimiter ends its step). Escapes \n and \t are understood.
    #[arg(long, default_value = "\\n")]
    step_delim: String,
    /// How a step's influence is obtained.
    #[arg(long, value_enum, default_value = "mean")]
    step_mode: StepModeArg,
    #[arg(long, value_enum, default_value = "spearman")]
    correlation: CorrArg,
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

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum PairBy {
    Text,
    Prompt,
}

pub fn run(a: Args) -> Result<()> {
    match a.sub {
        Some(Sub::Compare(c)) => compare(c),
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

struct Item {
    id: String,
    prompt: String,
    response: String,
}

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\t", "\t")
}

fn parse_projections(s: &str) -> Result<Vec<Proj>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p {
            "q" => Ok(Proj::Q),
            "k" => Ok(Proj::K),
            "v" => Ok(Proj::V),
            "o" => Ok(Proj::O),
            _ => bail!("--projections: \"{p}\" is not one of q, k, v, o"),
        })
        .collect()
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
    Ok(ProbeOptions {
        target: match a.target {
            TargetArg::Logit => Target::Logit,
            TargetArg::Logprob => Target::Logprob,
            TargetArg::Nll => Target::Nll,
        },
        norm: match a.norm {
            NormArg::Nuclear => Norm::Nuclear,
            NormArg::Frobenius => Norm::Frobenius,
        },
        projections: parse_projections(&a.projections)?,
        layers: egi_probe::fingerprint::parse_layers(&a.layers, n_layers)?,
        granularity: match a.granularity {
            GranArg::Token => Granularity::Token,
            GranArg::Step => Granularity::Step,
        },
        step_delim: unescape(&a.step_delim),
        step_mode: match a.step_mode {
            StepModeArg::Mean => StepMode::Mean,
            StepModeArg::SumLogits => StepMode::SumLogits,
            StepModeArg::MeanLogit => StepMode::MeanLogit,
        },
        correlation: match a.correlation {
            CorrArg::Spearman => Correlation::Spearman,
            CorrArg::Pearson => Correlation::Pearson,
        },
        batch: a.batch.max(1),
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
    let m = crate::common::load_model(&a.model)?;
    let tok = m.tokenizer()?;
    if !a.raw && tok.chat_template.is_none() {
        bail!(
            "{}: this model has no chat template; pass --raw to use the prompts as they are",
            m.source.path().display()
        );
    }
    let opts = opts_from(&a, m.model.cfg.num_layers)?;
    let matrices = opts.matrices(m.model.cfg.num_layers)?;

    // The texts.
    let items: Vec<Item> = if let Some(input) = &a.input {
        egi_eval::data::read_response_lines(input)?
            .into_iter()
            .map(|l| Item {
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
        };
        generate_responses(&m, &a, prompts)?
    };
    let mut seen = HashSet::new();
    for it in &items {
        if !seen.insert(it.id.clone()) {
            bail!(
                "duplicate id \"{}\" in the input; ids must be unique to resume a run",
                it.id
            );
        }
    }

    // Resume: completed responses are appended to a checkpoint as they finish.
    let run_key = json!({"model": a.model, "options": opts});
    let (mut ck, mut done) = PartialRows::open(&out_dir, "responses", &run_key, a.fresh)?;
    if !done.is_empty() {
        eprintln!("resuming: {} responses already done", done.len());
    }
    let done_ids: HashSet<String> = done
        .iter()
        .filter_map(|v| v["id"].as_str().map(String::from))
        .collect();

    let todo: Vec<&Item> = items
        .iter()
        .filter(|it| !done_ids.contains(&it.id))
        .collect();
    let pb = progress(todo.len() as u64, "responses");
    for (k, it) in todo.into_iter().enumerate() {
        if a.stop_after == Some(k) {
            pb.finish_and_clear();
            eprintln!("stopped after {k} responses; run the same command again to resume");
            return Ok(());
        }
        let rec = probe_one(&m, tok, it, &a, &opts)?;
        ck.append(std::slice::from_ref(&rec))?;
        done.push(rec);
        pb.inc(1);
    }
    pb.finish_and_clear();

    // Keep input order in the final file.
    let order: std::collections::HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.id.as_str(), i))
        .collect();
    done.retain(|v| v["id"].as_str().is_some_and(|id| order.contains_key(id)));
    done.sort_by_key(|v| order[v["id"].as_str().unwrap()]);
    let summary = egi_probe::report::summarize(
        &done,
        &a.model,
        a.bootstrap,
        &opts,
        &matrices,
        m.model.cfg.num_layers,
        t_start.elapsed().as_secs_f64(),
    )?;
    write_atomic(
        &out_dir.join("responses.jsonl"),
        done.iter()
            .filter(|v| v.get("skipped").is_none())
            .map(|v| format!("{v}\n"))
            .collect::<String>()
            .as_bytes(),
    )?;
    write_atomic(
        &out_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    egi_probe::report::plots(&out_dir, &done, &summary, &opts)?;
    ck.finish();
    print_table(&done, &summary, &out_dir);
    Ok(())
}

fn generate_responses(
    m: &egi_model::LoadedModel,
    a: &RunArgs,
    prompts: Vec<(String, String)>,
) -> Result<Vec<Item>> {
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
    // Batches of 8 prompts keep the left padding small.
    for (chunk_r, chunk_p) in reqs.chunks(8).zip(prompts.chunks(8)) {
        let c = generate_with_progress(&m.model, tok, &m.eos_ids(), chunk_r, &mut |n| {
            pb.inc(n as u64)
        })?;
        for (comp, (id, p)) in c.into_iter().zip(chunk_p) {
            out.push(Item {
                id: id.clone(),
                prompt: p.clone(),
                response: comp.text.trim_end().to_string(),
            });
        }
    }
    pb.finish_and_clear();
    Ok(out)
}

/// One response's JSON record, or a `skipped` record with the reason.
fn probe_one(
    m: &egi_model::LoadedModel,
    tok: &egi_model::Tokenizer,
    it: &Item,
    a: &RunArgs,
    opts: &ProbeOptions,
) -> Result<Value> {
    let skip = |why: String| json!({"id": it.id, "skipped": why});
    if it.response.trim().is_empty() {
        return Ok(skip("empty response".into()));
    }
    let enc = match encode_pair(tok, &it.prompt, &it.response, a.raw) {
        Ok(e) => e,
        Err(e) => return Ok(skip(format!("{e:#}"))),
    };
    let ctx = m.model.cfg.max_position_embeddings.min(a.max_tokens);
    if enc.ids.len() > ctx {
        return Ok(skip(format!(
            "{} tokens, longer than the limit of {ctx}",
            enc.ids.len()
        )));
    }
    let fp = fingerprint(
        &m.model,
        &enc.ids,
        enc.n_prompt,
        &enc.char_starts,
        &it.response,
        opts,
    )
    .with_context(|| format!("response {}", it.id))?;
    Ok(egi_probe::report::record(
        &fp,
        &it.id,
        &it.prompt,
        &it.response,
        enc.n_prompt,
        a.per_matrix,
        |id| tok.decode(&[id], false).unwrap_or_default(),
    ))
}

fn fmt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:+.3}"))
        .unwrap_or_else(|| "  n/a".into())
}

fn print_table(done: &[Value], s: &Value, out: &Path) {
    println!(
        "{:<14} {:>7} {:>6} {:>10} {:>10}",
        "id", "tokens", "steps", "rho_token", "rho_step"
    );
    for v in done {
        if let Some(why) = v["skipped"].as_str() {
            println!("{:<14} skipped: {why}", v["id"].as_str().unwrap_or(""));
            continue;
        }
        println!(
            "{:<14} {:>7} {:>6} {:>10} {:>10}",
            v["id"].as_str().unwrap_or(""),
            v["n_tokens"],
            v["steps"].as_array().map(|a| a.len()).unwrap_or(0),
            fmt(v["rho_token"].as_f64()),
            fmt(v["rho_step"].as_f64())
        );
    }
    for key in ["rho_token", "rho_step"] {
        let r = &s[key];
        let ci = r["mean_ci95"]
            .as_array()
            .map(|c| {
                format!(
                    "[{:+.3}, {:+.3}]",
                    c[0].as_f64().unwrap_or(0.0),
                    c[1].as_f64().unwrap_or(0.0)
                )
            })
            .unwrap_or_else(|| "n/a".into());
        println!(
            "mean {key}: {} (95% CI {ci}), {} responses, fraction < 0: {}",
            fmt(r["mean"].as_f64()),
            r["n"],
            r["frac_negative"]
                .as_f64()
                .map(|f| format!("{f:.2}"))
                .unwrap_or("n/a".into())
        );
    }
    println!(
        "pooled token-level rho: {}",
        fmt(s["pooled_rho_token"].as_f64())
    );
    println!(
        "verdict ({}): {}",
        s["granularity"].as_str().unwrap_or(""),
        s["verdict"].as_str().unwrap_or("")
    );
    println!(
        "{} tokens, {:.3} s per token; wrote {}/responses.jsonl, summary.json and plots (scatter, rho_hist, heatmap, response).svg/.png",
        s["tokens"],
        s["seconds_per_token"].as_f64().unwrap_or(0.0),
        out.display()
    );
}

fn compare(c: CompareArgs) -> Result<()> {
    let pair_by = match c.pair_by {
        PairBy::Text => egi_probe::report::PairBy::Text,
        PairBy::Prompt => egi_probe::report::PairBy::Prompt,
    };
    let cmp = egi_probe::report::compare(&c.dirs, pair_by)?;
    println!(
        "{:<28} {:>5} {:>26} {:>26}",
        "run", "n", "mean rho_token [95% CI]", "mean rho_step [95% CI]"
    );
    for r in cmp["runs"].as_array().into_iter().flatten() {
        let cell = |k: &str| {
            let s = &r[k];
            match (s["mean"].as_f64(), s["mean_ci95"].as_array()) {
                (Some(m), Some(ci)) => format!(
                    "{m:+.3} [{:+.3}, {:+.3}]",
                    ci[0].as_f64().unwrap_or(0.0),
                    ci[1].as_f64().unwrap_or(0.0)
                ),
                (Some(m), None) => format!("{m:+.3}"),
                _ => "n/a".into(),
            }
        };
        println!(
            "{:<28} {:>5} {:>26} {:>26}",
            r["dir"].as_str().unwrap_or(""),
            r["responses"],
            cell("rho_token"),
            cell("rho_step")
        );
    }
    for t in cmp["paired_tests"].as_array().into_iter().flatten() {
        if t["pairs"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        let unit = match c.pair_by {
            PairBy::Text => "identical texts",
            PairBy::Prompt => "shared prompts",
        };
        println!(
            "{} vs {}: {} paired on {} {unit}, mean difference {}, permutation p = {}{}",
            t["run"].as_str().unwrap_or(""),
            t["baseline"].as_str().unwrap_or(""),
            t["measure"].as_str().unwrap_or(""),
            t["pairs"],
            fmt(t["mean_difference"].as_f64()),
            t["p_value"]
                .as_f64()
                .map(|p| format!("{p:.4}"))
                .unwrap_or("n/a".into()),
            t["uninformative"]
                .as_str()
                .map(|w| format!(" (uninformative: {w})"))
                .unwrap_or_default()
        );
    }
    egi_probe::report::write_compare(&c.out, &cmp)?;
    println!(
        "wrote {}/compare.json and compare.svg/.png",
        c.out.display()
    );
    Ok(())
}
