//! A fingerprint run over a set of texts, as `egi fingerprint` makes it: resumable (each
//! finished response is kept across a crash), written in input order with its summary and
//! plots. The caller drives the loop, so that it owns the progress bar and the interruption:
//!
//! ```text
//! let mut run = FingerprintRun::open(out, settings, texts)?;
//! for i in run.pending() { run.measure(&model, &tok, i)?; }
//! let (records, summary) = run.finish(&model, seconds)?;
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use egi_model::{Tokenizer, Transformer};
use egi_report::shard::{check_parts, part_lines, Manifest};
use egi_report::{write_atomic, PartialRows};
use serde_json::{json, Value};

use crate::{fingerprint, report, ProbeOptions};

/// One text to fingerprint: the prompt and the response the model is measured on.
#[derive(Debug, Clone)]
pub struct Text {
    pub id: String,
    pub prompt: String,
    pub response: String,
}

/// Everything that decides a run's numbers (the resume key holds all but `fresh`).
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The model as the user named it (`--model`): recorded in the summary.
    pub model: String,
    pub options: ProbeOptions,
    /// Prompts used as they are, without the chat template.
    pub raw: bool,
    /// Keep every token's per-matrix norms in responses.jsonl.
    pub per_matrix: bool,
    /// Longer texts (prompt + response, in tokens) are skipped and counted.
    pub max_tokens: usize,
    /// Bootstrap resamples of the summary's confidence intervals.
    pub bootstrap: usize,
    /// Discard an interrupted run in the output folder instead of resuming it.
    pub fresh: bool,
}

pub struct FingerprintRun {
    out: PathBuf,
    settings: RunSettings,
    texts: Vec<Text>,
    rows: PartialRows,
    done: Vec<Value>,
    resumed: usize,
    shard: Option<Manifest>,
}

impl FingerprintRun {
    /// Checks the texts (unique ids: a resumed run finds its responses by id) and opens the
    /// run's progress in `out`, resuming a run with the same settings.
    pub fn open(out: &Path, settings: RunSettings, texts: Vec<Text>) -> Result<Self> {
        let mut seen = HashSet::new();
        for t in &texts {
            if !seen.insert(t.id.as_str()) {
                bail!(
                    "duplicate id \"{}\" in the input; ids must be unique to resume a run",
                    t.id
                );
            }
        }
        let key = json!({"model": settings.model, "options": settings.options});
        let (rows, done) = PartialRows::open(out, "responses", &key, settings.fresh)?;
        Ok(FingerprintRun {
            out: out.to_path_buf(),
            resumed: done.len(),
            settings,
            texts,
            rows,
            done,
            shard: None,
        })
    }

    /// Makes this run the shard `m` describes (`--shard K/N`; its texts already taken):
    /// `shard.json` records it now (unfinished) and again when the run ends, with what
    /// [`merge`] needs.
    pub fn as_shard(mut self, m: Manifest) -> Result<Self> {
        m.write(&self.out)?;
        self.shard = Some(m);
        Ok(self)
    }

    /// Responses found done in the output folder when the run was opened.
    pub fn resumed(&self) -> usize {
        self.resumed
    }

    /// Indices of the texts still to measure, in input order.
    pub fn pending(&self) -> Vec<usize> {
        let done: HashSet<&str> = self.done.iter().filter_map(|v| v["id"].as_str()).collect();
        (0..self.texts.len())
            .filter(|&i| !done.contains(self.texts[i].id.as_str()))
            .collect()
    }

    /// Fingerprints text `i` and keeps its record (flushed to disk before returning).
    pub fn measure(&mut self, model: &Transformer, tok: &Tokenizer, i: usize) -> Result<()> {
        let rec = measure_text(model, tok, &self.texts[i], &self.settings)?;
        self.rows.append(std::slice::from_ref(&rec))?;
        self.done.push(rec);
        Ok(())
    }

    /// Writes responses.jsonl (measured responses, input order), summary.json and the plots,
    /// and removes the progress files. Returns every record (skipped ones included) and the
    /// summary.
    pub fn finish(mut self, model: &Transformer, wall: f64) -> Result<(Vec<Value>, Value)> {
        let order: HashMap<&str, usize> = self
            .texts
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        // A resumed run may hold ids of texts no longer in the input (e.g. a smaller --limit).
        self.done
            .retain(|v| v["id"].as_str().is_some_and(|id| order.contains_key(id)));
        self.done.sort_by_key(|v| order[v["id"].as_str().unwrap()]);
        let s = &self.settings;
        let n_layers = model.cfg.num_layers;
        let summary = write_outputs(&self.out, &self.done, s, n_layers, wall)?;
        if let Some(m) = self.shard.take() {
            m.finish(&self.out, json!({
                "ids": self.texts.iter().map(|t| &t.id).collect::<Vec<_>>(),
                "skipped": self.done.iter().filter(|v| v.get("skipped").is_some()).collect::<Vec<_>>(),
                "model": s.model, "options": s.options, "bootstrap": s.bootstrap,
                "n_layers": n_layers, "wall_seconds": wall,
            }))?;
        }
        self.rows.finish();
        Ok((self.done, summary))
    }
}

/// Summary, responses.jsonl (measured records, in the order given), summary.json and the
/// plots of a finished run: one code path for a run and a merge of shards.
fn write_outputs(
    out: &Path,
    records: &[Value],
    s: &RunSettings,
    n_layers: usize,
    wall: f64,
) -> Result<Value> {
    let matrices = s.options.matrices(n_layers)?;
    let summary = report::summarize(
        records,
        &s.model,
        s.bootstrap,
        &s.options,
        &matrices,
        n_layers,
        wall,
    )?;
    let lines: String = records
        .iter()
        .filter(|v| v.get("skipped").is_none())
        .map(|v| format!("{v}\n"))
        .collect();
    write_atomic(&out.join("responses.jsonl"), lines.as_bytes())?;
    write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    report::plots(out, records, &summary, &s.options)?;
    Ok(summary)
}

/// `egi fingerprint merge`: the shards' records in input order and the summary, responses.jsonl
/// and plots a single run over the whole input writes (statistics from all records, not
/// averaged over shards; the same bootstrap seed), written to `out`. Nothing is written
/// unless every shard is there once, finished, from the same input and settings.
/// `wall_seconds` is the shards' sum.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(Vec<Value>, Value)> {
    let parts = check_parts(dirs, "egi fingerprint")?;
    let e = &parts[0].1.extra;
    let field = |k: &str| {
        e.get(k)
            .cloned()
            .with_context(|| format!("{}: shard.json has no extra.{k}", parts[0].0.display()))
    };
    let settings = RunSettings {
        model: serde_json::from_value(field("model")?)?,
        options: serde_json::from_value(field("options")?)?,
        raw: false,
        per_matrix: false,
        max_tokens: 0,
        bootstrap: serde_json::from_value(field("bootstrap")?)?,
        fresh: false,
    };
    let n_layers: usize = serde_json::from_value(field("n_layers")?)?;
    let mut placed: Vec<(usize, Value)> = vec![];
    let mut wall = 0.0;
    for (dir, m) in &parts {
        let ids: Vec<String> = serde_json::from_value(m.extra["ids"].clone())
            .with_context(|| format!("{}: shard.json extra.ids", dir.display()))?;
        if ids.len() != m.positions.len() {
            bail!(
                "{}: shard.json lists {} ids for {} positions",
                dir.display(),
                ids.len(),
                m.positions.len()
            );
        }
        let at: HashMap<&str, usize> = ids
            .iter()
            .map(String::as_str)
            .zip(m.positions.iter().copied())
            .collect();
        let mut records = part_lines(dir, "responses.jsonl")?;
        records.extend(m.extra["skipped"].as_array().cloned().unwrap_or_default());
        if records.len() != ids.len() {
            bail!(
                "{}: {} records for the shard's {} texts (was responses.jsonl edited?)",
                dir.display(),
                records.len(),
                ids.len()
            );
        }
        for r in records {
            let id = r["id"].as_str().unwrap_or("");
            let p = *at.get(id).with_context(|| {
                format!(
                    "{}: record of id \"{id}\" is not one of the shard's texts",
                    dir.display()
                )
            })?;
            placed.push((p, r));
        }
        wall += m.extra["wall_seconds"].as_f64().unwrap_or(0.0);
    }
    placed.sort_by_key(|(p, _)| *p);
    let records: Vec<Value> = placed.into_iter().map(|(_, r)| r).collect();
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let summary = write_outputs(out, &records, &settings, n_layers, wall)?;
    Ok((records, summary))
}

/// One response's record, or a `skipped` record with the reason (empty, too long, or a text
/// the tokenizer cannot split into prompt and response).
pub fn measure_text(
    model: &Transformer,
    tok: &Tokenizer,
    t: &Text,
    s: &RunSettings,
) -> Result<Value> {
    let skip = |why: String| json!({"id": t.id, "skipped": why});
    if t.response.trim().is_empty() {
        return Ok(skip("empty response".into()));
    }
    let enc = match egi_model::text::encode_pair(tok, &t.prompt, &t.response, s.raw) {
        Ok(e) => e,
        Err(e) => return Ok(skip(format!("{e:#}"))),
    };
    let ctx = model.cfg.max_position_embeddings.min(s.max_tokens);
    if enc.ids.len() > ctx {
        return Ok(skip(format!(
            "{} tokens, longer than the limit of {ctx}",
            enc.ids.len()
        )));
    }
    let fp = fingerprint(
        model,
        &enc.ids,
        enc.n_prompt,
        &enc.char_starts,
        &t.response,
        &s.options,
    )
    .with_context(|| format!("response {}", t.id))?;
    Ok(report::record(
        &fp,
        &t.id,
        &t.prompt,
        &t.response,
        enc.n_prompt,
        s.per_matrix,
        |id| tok.decode(&[id], false).unwrap_or_default(),
    ))
}

fn signed(x: Option<f64>) -> String {
    x.map(|v| format!("{v:+.3}"))
        .unwrap_or_else(|| "  n/a".into())
}

/// The table `egi fingerprint` prints: one line per response, the means with their CIs, the
/// verdict, and where the outputs went.
pub fn table(records: &[Value], s: &Value, out: &Path) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<14} {:>7} {:>6} {:>10} {:>10}",
        "id", "tokens", "steps", "rho_token", "rho_step"
    );
    for v in records {
        if let Some(why) = v["skipped"].as_str() {
            let _ = writeln!(o, "{:<14} skipped: {why}", v["id"].as_str().unwrap_or(""));
            continue;
        }
        let _ = writeln!(
            o,
            "{:<14} {:>7} {:>6} {:>10} {:>10}",
            v["id"].as_str().unwrap_or(""),
            v["n_tokens"],
            v["steps"].as_array().map(|a| a.len()).unwrap_or(0),
            signed(v["rho_token"].as_f64()),
            signed(v["rho_step"].as_f64())
        );
    }
    for key in ["rho_token", "rho_step"] {
        let r = &s[key];
        let _ = writeln!(
            o,
            "mean {key}: {} (95% CI {}), {} responses, fraction < 0: {}",
            signed(r["mean"].as_f64()),
            interval(&r["mean_ci95"]),
            r["n"],
            r["frac_negative"]
                .as_f64()
                .map(|f| format!("{f:.2}"))
                .unwrap_or("n/a".into())
        );
    }
    let _ = writeln!(
        o,
        "pooled token-level rho: {}",
        signed(s["pooled_rho_token"].as_f64())
    );
    let _ = writeln!(
        o,
        "verdict ({}): {}",
        s["granularity"].as_str().unwrap_or(""),
        s["verdict"].as_str().unwrap_or("")
    );
    let _ = write!(
        o,
        "{} tokens, {:.3} s per token; wrote {}/responses.jsonl, summary.json and plots (scatter, rho_hist, heatmap, response).svg/.png",
        s["tokens"],
        s["seconds_per_token"].as_f64().unwrap_or(0.0),
        out.display()
    );
    o
}

/// "[lo, hi]" with signs, or "n/a".
fn interval(ci: &Value) -> String {
    ci.as_array()
        .map(|c| {
            format!(
                "[{:+.3}, {:+.3}]",
                c[0].as_f64().unwrap_or(0.0),
                c[1].as_f64().unwrap_or(0.0)
            )
        })
        .unwrap_or_else(|| "n/a".into())
}

/// The table `egi fingerprint compare` prints for [`report::compare`]'s result.
pub fn compare_table(cmp: &Value, pair_by: report::PairBy) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<28} {:>5} {:>26} {:>26}",
        "run", "n", "mean rho_token [95% CI]", "mean rho_step [95% CI]"
    );
    for r in cmp["runs"].as_array().into_iter().flatten() {
        let cell = |k: &str| {
            let s = &r[k];
            match (s["mean"].as_f64(), s["mean_ci95"].is_array()) {
                (Some(m), true) => format!("{m:+.3} {}", interval(&s["mean_ci95"])),
                (Some(m), false) => format!("{m:+.3}"),
                _ => "n/a".into(),
            }
        };
        let _ = writeln!(
            o,
            "{:<28} {:>5} {:>26} {:>26}",
            r["dir"].as_str().unwrap_or(""),
            r["responses"],
            cell("rho_token"),
            cell("rho_step")
        );
    }
    let unit = match pair_by {
        report::PairBy::Text => "identical texts",
        report::PairBy::Prompt => "shared prompts",
    };
    for t in cmp["paired_tests"].as_array().into_iter().flatten() {
        if t["pairs"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        let _ = writeln!(
            o,
            "{} vs {}: {} paired on {} {unit}, mean difference {}, permutation p = {}{}",
            t["run"].as_str().unwrap_or(""),
            t["baseline"].as_str().unwrap_or(""),
            t["measure"].as_str().unwrap_or(""),
            t["pairs"],
            signed(t["mean_difference"].as_f64()),
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
    o.trim_end().to_string()
}
