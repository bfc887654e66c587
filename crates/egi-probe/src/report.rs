//! A fingerprint run's outputs: the JSON record of one response (a line of
//! `responses.jsonl`), `summary.json` over all of them, the plots, and the comparison of
//! several runs with paired tests (`compare.json`). The `egi fingerprint` command reads the
//! texts, runs [`crate::fingerprint`] on each and writes what these functions return.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use egi_report::stats::{self, Stat};
use serde_json::{json, Value};

use crate::fingerprint::{Granularity, ProbeOptions, ResponseFingerprint};
use crate::Proj;

/// One response's line of `responses.jsonl`: its tokens (with `token_text` of each id),
/// steps, rho at both levels, per-matrix means (and every token's norms when `per_matrix`).
pub fn record(
    fp: &ResponseFingerprint,
    id: &str,
    prompt: &str,
    response: &str,
    n_prompt: usize,
    per_matrix: bool,
    token_text: impl Fn(u32) -> String,
) -> Value {
    let tokens: Vec<Value> = fp
        .tokens
        .iter()
        .map(|t| {
            let mut v = json!({
                "pos": t.pos, "id": t.id, "text": token_text(t.id),
                "char_start": t.char_start, "step": t.step,
                "entropy": t.entropy, "logit": t.logit, "logprob": t.logprob, "influence": t.influence,
            });
            if per_matrix {
                v["nuclear"] = json!(t.norms);
            }
            v
        })
        .collect();
    let steps: Vec<Value> = fp
        .steps
        .iter()
        .map(|s| json!({"chars": s.chars, "n_tokens": s.n_tokens, "entropy": s.entropy, "influence": s.influence}))
        .collect();
    // Per-matrix means for the heatmap, kept even without --per-matrix.
    let n_m = fp.matrices.len();
    let mut mat_sum = vec![0f64; n_m];
    let mut cnt = 0usize;
    for t in &fp.tokens {
        if let Some(n) = &t.norms {
            for (s, x) in mat_sum.iter_mut().zip(n) {
                *s += x;
            }
            cnt += 1;
        }
    }
    if cnt == 0 {
        for s in &fp.steps {
            if let Some(n) = &s.norms {
                for (acc, x) in mat_sum.iter_mut().zip(n) {
                    *acc += x;
                }
                cnt += 1;
            }
        }
    }
    json!({
        "id": id,
        "prompt": prompt,
        "response": response,
        "n_prompt": n_prompt,
        "n_tokens": fp.tokens.len(),
        "rho_token": fp.rho_token,
        "rho_step": fp.rho_step,
        "tokens": tokens,
        "steps": steps,
        "matrix_mean": mat_sum.iter().map(|s| s / cnt.max(1) as f64).collect::<Vec<_>>(),
        "seconds": fp.seconds,
        "backward_flops": fp.backward_flops,
        "dense_fallbacks": fp.dense_fallbacks,
    })
}

/// (entropy, influence) of every token of every response that has per-token influences.
fn token_points(ok: &[&Value]) -> (Vec<f64>, Vec<f64>) {
    let mut ent = vec![];
    let mut inf = vec![];
    for v in ok {
        for t in v["tokens"].as_array().into_iter().flatten() {
            if let (Some(e), Some(i)) = (t["entropy"].as_f64(), t["influence"].as_f64()) {
                ent.push(e);
                inf.push(i);
            }
        }
    }
    (ent, inf)
}

fn ci_json(values: &[f64], n_boot: usize) -> Value {
    let ci = |s| stats::bootstrap_ci(values, s, n_boot, 0.95, 0);
    json!({
        "n": values.len(),
        "mean": stats::mean(values),
        "mean_ci95": ci(Stat::Mean).map(|(a, b)| [a, b]),
        "median": stats::median(values),
        "median_ci95": ci(Stat::Median).map(|(a, b)| [a, b]),
        "frac_negative": if values.is_empty() { Value::Null } else { json!(values.iter().filter(|&&x| x < 0.0).count() as f64 / values.len() as f64) },
    })
}

/// `summary.json` of a run from its response records (`done`, skipped ones included):
/// rho at both levels with bootstrap CIs (`bootstrap` resamples), every response a mean
/// leaves out with the reason, pooled rho, the per-matrix mean grid, timing, the verdict.
pub fn summarize(
    done: &[Value],
    model: &str,
    bootstrap: usize,
    opts: &ProbeOptions,
    matrices: &[(usize, Proj)],
    n_layers: usize,
    wall: f64,
) -> Result<Value> {
    let ok: Vec<&Value> = done.iter().filter(|v| v.get("skipped").is_none()).collect();
    let skipped: Vec<Value> = done
        .iter()
        .filter(|v| v.get("skipped").is_some())
        .cloned()
        .collect();
    let rho = |key: &str| -> Vec<f64> { ok.iter().filter_map(|v| v[key].as_f64()).collect() };
    // Every response a mean rho leaves out, with the reason: skipped before measuring, or
    // measured with too few or constant points.
    let points = |v: &Value, list: &str| -> (Vec<f64>, Vec<f64>) {
        let items = v[list].as_array().cloned().unwrap_or_default();
        let get = |k: &str| {
            items
                .iter()
                .map(|t| t[k].as_f64().unwrap_or(f64::NAN))
                .collect()
        };
        (get("entropy"), get("influence"))
    };
    let undefined = |key: &str, list: &str| -> Vec<Value> {
        ok.iter()
            .filter(|v| v[key].as_f64().is_none())
            .map(|v| {
                let (x, y) = points(v, list);
                let why = if list == "tokens" && opts.step_mode.per_step() {
                    "the per-step mode measures no token influences"
                } else {
                    stats::why_undefined(&x, &y).unwrap_or("undefined")
                };
                json!({"id": v["id"], "reason": format!("{why} ({} {list})", x.len())})
            })
            .collect()
    };
    let excluded = |key: &str, list: &str| -> Vec<Value> {
        skipped
            .iter()
            .map(|v| json!({"id": v["id"], "reason": format!("skipped: {}", v["skipped"].as_str().unwrap_or(""))}))
            .chain(undefined(key, list))
            .collect()
    };
    let (rt, rs) = (rho("rho_token"), rho("rho_step"));
    let (ent, inf) = token_points(&ok);
    let pooled = crate::fingerprint::correlate(opts.correlation, &ent, &inf);
    // Mean norm per (layer, projection), weighted by tokens.
    let mut grid = vec![vec![None::<(f64, f64)>; 4]; n_layers];
    for v in &ok {
        let w = v["n_tokens"].as_f64().unwrap_or(0.0);
        for (i, x) in v["matrix_mean"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let (l, p) = matrices[i];
            let e = grid[l][p.index()].get_or_insert((0.0, 0.0));
            e.0 += w * x.as_f64().unwrap_or(0.0);
            e.1 += w;
        }
    }
    let grid: Vec<Vec<Option<f64>>> = grid
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| c.map(|(s, w)| s / w.max(1e-300)))
                .collect()
        })
        .collect();
    let n_tok: usize = ok
        .iter()
        .map(|v| v["n_tokens"].as_u64().unwrap_or(0) as usize)
        .sum();
    let probe_secs: f64 = ok
        .iter()
        .map(|v| v["seconds"].as_f64().unwrap_or(0.0))
        .sum();
    // Lines written before the count existed have none: null, not a made-up 0.
    let dense_fallbacks: Option<u64> = ok.iter().map(|v| v["dense_fallbacks"].as_u64()).sum();
    let primary = match opts.granularity {
        Granularity::Token => &rt,
        Granularity::Step => &rs,
    };
    let ci = stats::bootstrap_ci(primary, Stat::Mean, bootstrap, 0.95, 0);
    let verdict = match ci {
        Some((_, hi)) if hi < 0.0 => "inversion (rho < 0: the 95% CI of the mean lies below 0)",
        Some((lo, _)) if lo > 0.0 => "no inversion (rho > 0: the 95% CI of the mean lies above 0)",
        Some(_) => "inconclusive (the 95% CI of the mean contains 0)",
        None => "undefined (fewer than 2 responses with a defined rho)",
    };
    Ok(json!({
        "model": model,
        "options": opts,
        "responses": ok.len(),
        "skipped": skipped.len(),
        "skipped_reasons": skipped,
        "tokens": n_tok,
        "rho_token": ci_json(&rt, bootstrap),
        "rho_step": ci_json(&rs, bootstrap),
        "rho_token_undefined": ok.len() - rt.len(),
        "rho_step_undefined": ok.len() - rs.len(),
        "rho_token_excluded": excluded("rho_token", "tokens"),
        "rho_step_excluded": excluded("rho_step", "steps"),
        "pooled_rho_token": pooled,
        "granularity": match opts.granularity { Granularity::Token => "token", Granularity::Step => "step" },
        "verdict": verdict,
        "matrix_mean": {"rows": "layer", "cols": ["q", "k", "v", "o"], "values": grid},
        "wall_seconds": wall,
        "probe_seconds": probe_secs,
        "dense_fallbacks": dense_fallbacks,
        "tokens_per_second": if probe_secs > 0.0 { json!(n_tok as f64 / probe_secs) } else { Value::Null },
        "seconds_per_token": if n_tok > 0 { json!(probe_secs / n_tok as f64) } else { Value::Null },
    }))
}

/// The run's plots (scatter, rho histogram, per-matrix heatmap, one response) as SVG and PNG.
pub fn plots(out: &Path, done: &[Value], summary: &Value, opts: &ProbeOptions) -> Result<()> {
    let ok: Vec<&Value> = done.iter().filter(|v| v.get("skipped").is_none()).collect();
    let (ent, inf) = token_points(&ok);
    let model = summary["model"].as_str().unwrap_or("");
    if !ent.is_empty() {
        egi_report::plot::scatter_entropy_influence(
            &out.join("scatter"),
            &ent,
            &inf,
            summary["pooled_rho_token"].as_f64(),
            &format!("{model}: entropy vs gradient influence (all tokens)"),
        )?;
    } else {
        // Step-sum mode has no token influences: plot steps.
        let mut se = vec![];
        let mut si = vec![];
        for v in &ok {
            for s in v["steps"].as_array().into_iter().flatten() {
                se.push(s["entropy"].as_f64().unwrap_or(f64::NAN));
                si.push(s["influence"].as_f64().unwrap_or(f64::NAN));
            }
        }
        let rho = crate::fingerprint::correlate(opts.correlation, &se, &si);
        egi_report::plot::scatter_entropy_influence(
            &out.join("scatter"),
            &se,
            &si,
            rho,
            &format!("{model}: entropy vs gradient influence (steps)"),
        )?;
    }
    let key = if opts.granularity == Granularity::Token {
        "rho_token"
    } else {
        "rho_step"
    };
    let rhos: Vec<f64> = ok.iter().filter_map(|v| v[key].as_f64()).collect();
    egi_report::plot::histogram(
        &out.join("rho_hist"),
        &rhos,
        &format!("per-response {key}"),
        &format!("{model}: per-response {key}"),
        summary[key]["mean"].as_f64(),
    )?;
    let grid: Vec<Vec<f64>> = summary["matrix_mean"]["values"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            r.as_array()
                .into_iter()
                .flatten()
                .map(|x| x.as_f64().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    egi_report::plot::heatmap(
        &out.join("heatmap"),
        &grid,
        "layer",
        &["q", "k", "v", "o"],
        &format!("{model}: mean gradient norm per matrix"),
    )?;
    // One response along its tokens: the longest.
    if let Some(v) = ok
        .iter()
        .max_by_key(|v| v["n_tokens"].as_u64().unwrap_or(0))
    {
        let toks = v["tokens"].as_array().cloned().unwrap_or_default();
        let e: Vec<f64> = toks
            .iter()
            .map(|t| t["entropy"].as_f64().unwrap_or(f64::NAN))
            .collect();
        let i: Vec<f64> = toks
            .iter()
            .map(|t| t["influence"].as_f64().unwrap_or(f64::NAN))
            .collect();
        let mut starts = vec![];
        let mut last = None;
        for (k, t) in toks.iter().enumerate() {
            let s = t["step"].as_u64();
            if s != last {
                starts.push(k);
                last = s;
            }
        }
        egi_report::plot::along_response(
            &out.join("response"),
            &e,
            &i,
            &starts,
            &format!(
                "response {}: entropy and influence per token",
                v["id"].as_str().unwrap_or("")
            ),
        )?;
    }
    Ok(())
}

/// What makes two responses of two runs a pair in [`compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PairBy {
    /// Same id, prompt and response text: one set of texts scored by several models.
    Text,
    /// Same id and prompt: each model's own answer to the same prompt (e.g. checkpoints).
    Prompt,
}

/// Compare fingerprint runs (output folders): a row per run (mean rho at both levels with
/// CIs, from its summary.json) and, for every later run against the first, a paired
/// sign-flip test of the per-response rho differences at both levels, with a bootstrap CI of
/// the mean difference and the reason when the comparison has no power. The returned JSON is
/// `compare.json`'s content.
pub fn compare(dirs: &[PathBuf], pair_by: PairBy) -> Result<Value> {
    type Rho = std::collections::BTreeMap<String, (Option<f64>, Option<f64>, String)>;
    let mut runs: Vec<(PathBuf, Value, Rho)> = vec![];
    for d in dirs {
        let sp = d.join("summary.json");
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(&sp).with_context(|| {
                format!(
                    "{}: cannot read (is this a fingerprint output directory?)",
                    sp.display()
                )
            })?)
            .with_context(|| format!("{}: not valid JSON", sp.display()))?;
        let rp = d.join("responses.jsonl");
        let mut rho = Rho::new();
        for (i, l) in std::fs::read_to_string(&rp)
            .with_context(|| format!("{}: cannot read", rp.display()))?
            .lines()
            .enumerate()
        {
            let v: Value = serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not valid JSON", rp.display(), i + 1))?;
            // The key two runs must share for a pair.
            let key = match pair_by {
                PairBy::Text => format!(
                    "{}\u{0}{}",
                    v["prompt"].as_str().unwrap_or(""),
                    v["response"].as_str().unwrap_or("")
                ),
                PairBy::Prompt => v["prompt"].as_str().unwrap_or("").to_string(),
            };
            rho.insert(
                v["id"].as_str().unwrap_or("").to_string(),
                (v["rho_token"].as_f64(), v["rho_step"].as_f64(), key),
            );
        }
        runs.push((d.clone(), summary, rho));
    }
    let table: Vec<Value> = runs
        .iter()
        .map(|(dir, s, _)| {
            json!({"dir": dir, "model": s["model"], "responses": s["responses"],
                "granularity": s["granularity"], "rho_token": s["rho_token"],
                "rho_step": s["rho_step"], "verdict": s["verdict"]})
        })
        .collect();
    let mut tests = vec![];
    let (base_dir, _, base) = &runs[0];
    for (dir, _, r) in &runs[1..] {
        for (ki, key) in ["rho_token", "rho_step"].iter().enumerate() {
            let (mut a, mut b) = (vec![], vec![]);
            for (id, x) in base {
                if let Some(y) = r.get(id) {
                    if x.2 != y.2 {
                        continue;
                    }
                    let (xa, yb) = if ki == 0 { (x.0, y.0) } else { (x.1, y.1) };
                    if let (Some(xa), Some(yb)) = (xa, yb) {
                        a.push(xa);
                        b.push(yb);
                    }
                }
            }
            let d: Vec<f64> = b.iter().zip(&a).map(|(x, y)| x - y).collect();
            tests.push(json!({
                "run": dir, "baseline": base_dir, "measure": key,
                "pairing": match pair_by { PairBy::Text => "text", PairBy::Prompt => "prompt" },
                "pairs": a.len(),
                "mean_difference": stats::mean(&d),
                "difference_ci95": stats::bootstrap_ci(&d, Stat::Mean, 2000, 0.95, 0).map(|(l, h)| [l, h]),
                "p_value": stats::paired_permutation_test(&b, &a, 10_000, 0),
                "uninformative": stats::no_power(&d, 0.05),
            }));
        }
    }
    Ok(json!({"runs": table, "paired_tests": tests}))
}

/// Write [`compare`]'s result as `out/compare.json` and its forest plot of each run's mean
/// rho (at the run's headline level) with the 95% CI as `out/compare.svg/.png`.
pub fn write_compare(out: &Path, cmp: &Value) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    egi_report::write_atomic(
        &out.join("compare.json"),
        serde_json::to_string_pretty(cmp)?.as_bytes(),
    )?;
    let mut rows = vec![];
    for r in cmp["runs"].as_array().into_iter().flatten() {
        let key = if r["granularity"] == "token" {
            "rho_token"
        } else {
            "rho_step"
        };
        let s = &r[key];
        if let (Some(m), Some(ci)) = (s["mean"].as_f64(), s["mean_ci95"].as_array()) {
            rows.push((
                format!("{} ({key})", r["dir"].as_str().unwrap_or("")),
                m,
                ci[0].as_f64().unwrap_or(m),
                ci[1].as_f64().unwrap_or(m),
            ));
        }
    }
    egi_report::plot::compare_intervals(
        &out.join("compare"),
        &rows,
        "mean rho (95% CI)",
        "fingerprint comparison",
    )
}
