//! Running an evaluation: [`sample_and_check`] is the generate-and-verify loop that `egi eval`
//! and the trainer's periodic evaluation share; [`EvalRun`] is `egi eval`'s resumable run
//! around it (samples kept per problem across a crash, the summary, the printed table).
//!
//! ```text
//! let mut run = EvalRun::open(out, settings)?;
//! for chunk in run.pending().chunks(k) { run.run_batch(&model, &tok, &eos, chunk)?; }
//! let summary = run.finish(seconds)?;
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use egi_generate::{generate_ids, Completion, Request, SamplingParams};
use egi_model::{Tokenizer, Transformer};
use egi_report::shard::{check_parts, part_lines, Manifest};
use egi_report::{write_atomic, PartialRows};
use egi_verify::{verify, Options, Verdict};
use serde_json::{json, Value};

use crate::data::{DataSource, Problem};

/// How each prompt is sampled.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// Samples per prompt.
    pub n: usize,
    /// 0: greedy.
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub seed: u64,
}

/// `s.n` completions of each prompt, each with `check(prompt index, text)`, in prompt order
/// then sample order. `prompts` are (problem id, prompt ids): a sample's seed depends on the
/// problem's id and the sample's index only, so a result does not depend on batching or on
/// where a run resumed.
pub fn sample_and_check<V>(
    model: &Transformer,
    decode: &(dyn Fn(&[u32]) -> Result<String> + Sync),
    eos: &[u32],
    prompts: &[(&str, &[u32])],
    s: &Sampling,
    check: &dyn Fn(usize, &str) -> V,
) -> Result<Vec<(usize, Completion, V)>> {
    let reqs: Vec<Request> = prompts
        .iter()
        .flat_map(|(id, ids)| {
            (0..s.n).map(move |k| Request {
                prompt_ids: ids.to_vec(),
                params: SamplingParams {
                    temperature: s.temperature,
                    top_p: s.top_p,
                    top_k: 0,
                    max_new_tokens: s.max_new_tokens,
                    stop: vec![],
                    seed: s
                        .seed
                        .wrapping_mul(1_000_003)
                        .wrapping_add(fnv1a(id))
                        .wrapping_add(k as u64),
                },
            })
        })
        .collect();
    let comps = generate_ids(model, decode, eos, &reqs, &mut |_| {})?;
    Ok(comps
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let v = check(i / s.n, &c.text);
            (i / s.n, c, v)
        })
        .collect())
}

/// Stable hash of a problem id (FNV-1a), for per-problem seeds.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Everything that decides an evaluation's numbers.
#[derive(Debug, Clone)]
pub struct EvalSettings {
    /// The model as the user named it (`--model`).
    pub model: String,
    /// The benchmark as the user named it (`--bench`).
    pub bench: String,
    pub data: DataSource,
    pub problems: Vec<Problem>,
    pub sampling: Sampling,
    /// Greedy decoding (one sample, temperature 0): reported as such.
    pub greedy: bool,
    /// Pass@k values reported (each <= n).
    pub ks: Vec<usize>,
    /// Prompt template: boxed, plain, or a text with {problem}.
    pub template: String,
    /// Prompts without the chat template.
    pub raw: bool,
    pub require_think_close: bool,
    pub bootstrap: usize,
    /// Discard an interrupted run in the output folder instead of resuming it.
    pub fresh: bool,
}

pub struct EvalRun {
    out: PathBuf,
    settings: EvalSettings,
    data_sha256: String,
    ck: PartialRows,
    rows: Vec<Value>,
    done: HashSet<String>,
    shard: Option<Manifest>,
}

impl EvalRun {
    /// Opens the run's progress in `out`, resuming a run with the same settings: a problem
    /// counts as done only with all its n samples (the others' samples are dropped).
    pub fn open(out: &Path, settings: EvalSettings) -> Result<Self> {
        crate::prompt::render(&settings.template, "x")?;
        let data_sha256 = settings.data.sha256()?;
        let s = &settings;
        let n = s.sampling.n;
        let key = json!({"model": s.model, "bench": s.bench, "data_sha256": data_sha256, "n": n,
            "temperature": s.sampling.temperature, "top_p": s.sampling.top_p,
            "max_new_tokens": s.sampling.max_new_tokens, "template": s.template, "raw": s.raw,
            "seed": s.sampling.seed, "require_think_close": s.require_think_close});
        let (mut ck, mut rows) = PartialRows::open(out, "samples", &key, s.fresh)?;
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        for r in &rows {
            *per.entry(r["problem_id"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        let done: HashSet<String> = per
            .into_iter()
            .filter(|(_, c)| *c == n)
            .map(|(k, _)| k)
            .collect();
        rows.retain(|r| done.contains(r["problem_id"].as_str().unwrap_or("")));
        ck.rewrite(&rows)?;
        Ok(EvalRun {
            out: out.to_path_buf(),
            settings,
            data_sha256,
            ck,
            rows,
            done,
            shard: None,
        })
    }

    /// Makes this run the shard `m` describes (`--shard K/N`; its problems already taken):
    /// `shard.json` records it now (unfinished) and again when the run ends, with what
    /// [`merge`] needs.
    pub fn as_shard(mut self, m: Manifest) -> Result<Self> {
        m.write(&self.out)?;
        self.shard = Some(m);
        Ok(self)
    }

    /// Problems found complete when the run was opened.
    pub fn resumed(&self) -> usize {
        self.done.len()
    }

    /// Indices of the problems still to sample, in data order.
    pub fn pending(&self) -> Vec<usize> {
        (0..self.settings.problems.len())
            .filter(|&i| !self.done.contains(&self.settings.problems[i].id))
            .collect()
    }

    /// Samples and verifies problems `which` together, and keeps their rows (flushed).
    pub fn run_batch(
        &mut self,
        model: &Transformer,
        tok: &Tokenizer,
        eos: &[u32],
        which: &[usize],
    ) -> Result<()> {
        let s = &self.settings;
        let problems: Vec<&Problem> = which.iter().map(|&i| &s.problems[i]).collect();
        let ids = problems
            .iter()
            .map(|p| {
                let text = crate::prompt::render(&s.template, &p.problem)?;
                egi_model::text::encode_prompt(tok, &text, s.raw)
            })
            .collect::<Result<Vec<_>>>()?;
        let prompts: Vec<(&str, &[u32])> = problems
            .iter()
            .zip(&ids)
            .map(|(p, ids)| (p.id.as_str(), ids.as_slice()))
            .collect();
        let vopts = Options {
            require_think_close: s.require_think_close,
            ..Options::default()
        };
        let samples = sample_and_check(
            model,
            &|ids| tok.decode(ids, true),
            eos,
            &prompts,
            &s.sampling,
            &|i, text| verify(text, &problems[i].gold, &vopts),
        )?;
        let n = s.sampling.n;
        let fresh: Vec<Value> = samples
            .iter()
            .enumerate()
            .map(|(j, (i, c, v))| sample_row(problems[*i], j % n, c, v))
            .collect();
        self.ck.append(&fresh)?;
        self.rows.extend(fresh);
        Ok(())
    }

    /// Writes samples.jsonl (problem order) and summary.json, removes the progress files,
    /// and returns the summary.
    pub fn finish(mut self, wall: f64) -> Result<Value> {
        let s = &self.settings;
        let order: BTreeMap<&str, usize> = s
            .problems
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        self.rows.sort_by_key(|r| {
            (
                order
                    .get(r["problem_id"].as_str().unwrap_or(""))
                    .copied()
                    .unwrap_or(usize::MAX),
                r["sample"].as_u64(),
            )
        });
        let head = json!({
            "model": s.model, "bench": s.bench, "file": s.data.label(), "data_sha256": self.data_sha256,
            "samples_per_problem": s.sampling.n,
            "greedy": s.greedy, "temperature": s.sampling.temperature, "top_p": s.sampling.top_p,
            "max_new_tokens": s.sampling.max_new_tokens, "template": s.template,
        });
        let summary = write_outputs(
            &self.out,
            &head,
            &self.rows,
            &s.problems,
            &s.ks,
            s.bootstrap,
            wall,
        )?;
        if let Some(m) = self.shard.take() {
            m.finish(
                &self.out,
                json!({
                    "head": head, "ks": s.ks, "bootstrap": s.bootstrap, "wall_seconds": wall,
                    "problem_ids": s.problems.iter().map(|p| &p.id).collect::<Vec<_>>(),
                }),
            )?;
        }
        self.ck.finish();
        Ok(summary)
    }
}

/// summary.json (`head`: the settings' fields; then the numbers, all from `rows`) and
/// samples.jsonl (rows as given) of a finished evaluation: one code path for a run and a
/// merge of shards.
fn write_outputs(
    out: &Path,
    head: &Value,
    rows: &[Value],
    problems: &[Problem],
    ks: &[usize],
    bootstrap: usize,
    wall: f64,
) -> Result<Value> {
    let n = head["samples_per_problem"].as_u64().unwrap_or(1) as usize;
    let n_tok: u64 = rows.iter().map(|r| r["tokens"].as_u64().unwrap_or(0)).sum();
    let mut summary = serde_json::Map::new();
    for (k, v) in head.as_object().into_iter().flatten() {
        if k == "samples_per_problem" {
            summary.insert("problems".into(), json!(problems.len()));
        }
        summary.insert(k.clone(), v.clone());
    }
    let computed = json!({
        "metrics": crate::report::metrics(rows, problems, n, ks, bootstrap),
        "verdicts": crate::report::verdict_counts(rows),
        "by_extraction": crate::report::breakdown(rows, "extract_method", "none"),
        "by_finish_reason": crate::report::breakdown(rows, "finish_reason", "unknown"),
        "per_problem_pass@1": crate::report::per_problem_pass1(rows, problems, n),
        "generated_tokens": n_tok, "wall_seconds": wall,
    });
    summary.extend(computed.as_object().cloned().unwrap_or_default());
    let summary = Value::Object(summary);
    let lines: String = rows.iter().map(|v| format!("{v}\n")).collect();
    write_atomic(&out.join("samples.jsonl"), lines.as_bytes())?;
    write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(summary)
}

/// `egi eval merge`: the shards' samples in problem order and the summary one run over all
/// the problems writes (Pass@k, CIs with the same bootstrap seed, verdicts and breakdowns from
/// all samples, not averaged over shards), written to `out`. Nothing is written unless every
/// shard is there once, finished, from the same data and settings. `wall_seconds` is the
/// shards' sum.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Value> {
    let parts = check_parts(dirs, "egi eval")?;
    let e = &parts[0].1.extra;
    let head = e["head"].clone();
    let ks: Vec<usize> = serde_json::from_value(e["ks"].clone())
        .with_context(|| format!("{}: shard.json extra.ks", parts[0].0.display()))?;
    let bootstrap = e["bootstrap"].as_u64().unwrap_or(0) as usize;
    let mut problems: Vec<(usize, Problem)> = vec![];
    let mut rows: Vec<(usize, u64, Value)> = vec![];
    let mut wall = 0.0;
    for (dir, m) in &parts {
        let ids: Vec<String> = serde_json::from_value(m.extra["problem_ids"].clone())
            .with_context(|| format!("{}: shard.json extra.problem_ids", dir.display()))?;
        if ids.len() != m.positions.len() {
            bail!(
                "{}: shard.json lists {} problems for {} positions",
                dir.display(),
                ids.len(),
                m.positions.len()
            );
        }
        let at: BTreeMap<&str, usize> = ids
            .iter()
            .map(String::as_str)
            .zip(m.positions.iter().copied())
            .collect();
        for r in part_lines(dir, "samples.jsonl")? {
            let id = r["problem_id"].as_str().unwrap_or("");
            let p = *at.get(id).with_context(|| {
                format!(
                    "{}: sample of problem \"{id}\" is not one of the shard's problems",
                    dir.display()
                )
            })?;
            rows.push((p, r["sample"].as_u64().unwrap_or(0), r));
        }
        problems.extend(ids.into_iter().zip(&m.positions).map(|(id, &p)| {
            (
                p,
                Problem {
                    id,
                    problem: String::new(),
                    gold: String::new(),
                },
            )
        }));
        wall += m.extra["wall_seconds"].as_f64().unwrap_or(0.0);
    }
    problems.sort_by_key(|(p, _)| *p);
    rows.sort_by_key(|(p, k, _)| (*p, *k));
    let problems: Vec<Problem> = problems.into_iter().map(|(_, p)| p).collect();
    let rows: Vec<Value> = rows.into_iter().map(|(_, _, r)| r).collect();
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    write_outputs(out, &head, &rows, &problems, &ks, bootstrap, wall)
}

/// One line of samples.jsonl.
fn sample_row(p: &Problem, sample: usize, c: &Completion, v: &Verdict) -> Value {
    json!({
        "problem_id": p.id, "sample": sample, "gold": p.gold, "response": c.text,
        "extracted": v.extracted.as_ref().map(|e| &e.text),
        "extract_method": v.extracted.as_ref().map(|e| &e.method),
        "verdict": v.status, "tokens": c.token_ids.len(), "finish_reason": c.finish_reason,
    })
}

/// The lines `egi eval` prints for a summary: each metric with its CIs, the verdicts, and
/// how answers were taken and generations ended.
pub fn table(summary: &Value) -> String {
    let mut o = String::new();
    let pair = |c: &Value| {
        c.as_array().map(|c| {
            format!(
                "[{:.3}, {:.3}]",
                c[0].as_f64().unwrap_or(0.0),
                c[1].as_f64().unwrap_or(0.0)
            )
        })
    };
    let greedy = summary["greedy"].as_bool().unwrap_or(false);
    let _ = writeln!(
        o,
        "{}: {} problems x {} samples ({})",
        summary["bench"].as_str().unwrap_or(""),
        summary["problems"],
        summary["samples_per_problem"],
        if greedy { "greedy" } else { "sampled" }
    );
    for (name, e) in summary["metrics"].as_object().into_iter().flatten() {
        let mean = e["mean"].as_f64().unwrap_or(0.0);
        // When every problem scores the same (0/n, n/n) the bootstrap's interval has no width
        // and says nothing: then only Wilson's, which does.
        let flat = e["ci95"]
            .as_array()
            .is_some_and(|c| c.len() == 2 && c[0] == c[1]);
        let line = match (pair(&e["ci95"]), pair(&e["wilson95"])) {
            (_, Some(w)) if flat => format!("95% CI {w} (Wilson: every problem scored the same)"),
            (Some(ci), Some(w)) => format!("95% CI {ci} (Wilson {w})"),
            (Some(ci), None) => format!("95% CI {ci}"),
            (None, Some(w)) => format!("95% CI {w} (Wilson)"),
            (None, None) => "95% CI n/a".into(),
        };
        let _ = writeln!(o, "  {name:<8} {mean:.3}  {line}");
    }
    let _ = writeln!(o, "  verdicts: {}", summary["verdicts"]);
    for (title, key) in [
        ("answer taken by", "by_extraction"),
        ("generation ended by", "by_finish_reason"),
    ] {
        let _ = writeln!(o, "  {title}:");
        for (k, v) in summary[key].as_object().into_iter().flatten() {
            let _ = writeln!(
                o,
                "    {k:<14} {:>6} samples, {:>6} correct",
                v["samples"], v["correct"]
            );
        }
    }
    o.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn table_prints_one_meaningful_interval_per_figure() {
        let s = serde_json::json!({"bench": "b", "problems": 3, "samples_per_problem": 1,
            "greedy": true, "metrics": {
                "pass@1": {"mean": 0.0, "ci95": [0.0, 0.0], "wilson95": [0.0, 0.5617]},
                "pass@4": {"mean": 0.5, "ci95": [0.2, 0.8], "wilson95": [0.1, 0.9]}},
            "verdicts": {}, "by_extraction": {}, "by_finish_reason": {}});
        let t = super::table(&s);
        assert!(
            t.contains(
                "pass@1   0.000  95% CI [0.000, 0.562] (Wilson: every problem scored the same)"
            ),
            "{t}"
        );
        assert!(
            t.contains("pass@4   0.500  95% CI [0.200, 0.800] (Wilson [0.100, 0.900])"),
            "{t}"
        );
        assert!(!t.contains("[0.000, 0.000]"), "{t}");
    }

    #[test]
    fn seeds_hash_is_fnv1a() {
        // FNV-1a's published test vectors: a resumed run must draw the seeds it drew before.
        assert_eq!(fnv1a(""), 0xcbf29ce484222325);
        assert_eq!(fnv1a("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a("foobar"), 0x85944171f73967e8);
    }
}
