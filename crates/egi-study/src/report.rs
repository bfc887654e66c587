//! The study's report: DIR/report/report.md and report.html (plots embedded), report.json (the
//! same tables and verdicts as data, with the JSON they were computed from), plus the plots as
//! SVG files. Every number is read from the JSON the study's commands wrote (summary.json,
//! compare.json, metrics.jsonl, ...); a missing output shows as "n/a" with the stage to run.
//! A test edits one of those files and finds the edited value in the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::config::StudyConfig;
use crate::stage_seconds;
use crate::stages::{command_line, eval_sets, rl_runs, Stage, ALGOS, MAX_STEPS};
use egi_report::write_atomic;

enum Block {
    H2(String),
    P(String),
    Table(Vec<String>, Vec<Vec<String>>),
    Img(String, String),
    Code(String),
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn f3(x: Option<f64>) -> String {
    x.map(|v| format!("{v:+.3}"))
        .unwrap_or_else(|| "n/a".into())
}

fn ci(v: &Value) -> Option<(f64, f64)> {
    let a = v.as_array()?;
    Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?))
}

fn with_ci(mean: Option<f64>, c: Option<(f64, f64)>) -> String {
    match (mean, c) {
        (Some(m), Some((l, h))) => format!("{m:+.3} [{l:+.3}, {h:+.3}]"),
        (Some(m), None) => format!("{m:+.3}"),
        _ => "n/a".into(),
    }
}

/// Accuracy as a plain fraction with its interval.
fn acc_ci(mean: Option<f64>, c: Option<(f64, f64)>) -> String {
    match (mean, c) {
        (Some(m), Some((l, h))) => format!("{m:.3} [{l:.3}, {h:.3}]"),
        (Some(m), None) => format!("{m:.3}"),
        _ => "n/a".into(),
    }
}

const NO_CI: &str = "n/a (stage not run)";
/// The row of the accuracy tests over every held-out problem together.
const ALL_SETS: &str = "all held-out problems";

/// Significance level of every verdict.
const ALPHA: f64 = 0.05;

/// Verdict on "mean rho is below 0" (sign -1) or "above 0" (sign +1) from the 95% CI of the
/// mean over `n` responses with a defined rho. "uninformative" when `n` is too small for any
/// test to reach the level (see `stats::no_power`), "inconclusive" when a test could have
/// and the CI still contains 0.
fn verdict(c: Option<(f64, f64)>, n: Option<u64>, sign: f64) -> String {
    let n = n.unwrap_or(0) as usize;
    if c.is_some() || n > 0 {
        let floor = egi_report::stats::sign_flip_min_p(n);
        if floor > ALPHA {
            return format!(
                "uninformative (only {n} responses with a defined rho: no test reaches p < {ALPHA})"
            );
        }
    }
    match c {
        Some((l, h)) if sign < 0.0 && h < 0.0 || sign > 0.0 && l > 0.0 => "supported".into(),
        Some((l, h)) if sign < 0.0 && l > 0.0 || sign > 0.0 && h < 0.0 => "not supported".into(),
        Some(_) => "inconclusive at this scale".into(),
        None => NO_CI.into(),
    }
}

/// Verdict on "the paired difference is below 0" (sign -1) or "above 0" (sign +1) from a
/// paired test (`fingerprint compare`, or [`pooled`]).
fn paired_verdict(t: &Option<Value>, sign: f64) -> String {
    let Some(t) = t else {
        return NO_CI.into();
    };
    if let Some(why) = t["uninformative"].as_str() {
        return format!("uninformative ({why})");
    }
    match (t["mean_difference"].as_f64(), t["p_value"].as_f64()) {
        (Some(d), Some(p)) if p < ALPHA && d * sign > 0.0 => "supported".into(),
        (Some(d), Some(p)) if p < ALPHA && d * sign < 0.0 => "not supported".into(),
        (Some(_), Some(_)) => "inconclusive at this scale".into(),
        _ => NO_CI.into(),
    }
}

/// A paired test as "difference [CI] (p, n pairs)".
fn paired_cell(t: &Option<Value>) -> String {
    match t {
        Some(t) => format!(
            "{} (p {}, {} pairs)",
            with_ci(t["mean_difference"].as_f64(), ci(&t["difference_ci95"])),
            t["p_value"]
                .as_f64()
                .map(|p| format!("{p:.3}"))
                .unwrap_or("n/a".into()),
            t["pairs"]
        ),
        None => "n/a".into(),
    }
}

/// The paired test of `measure` for the run whose directory ends in `run` in a compare.json.
fn paired_test(cmp: &Option<Value>, run: &str, measure: &str) -> Option<Value> {
    cmp.as_ref()?["paired_tests"]
        .as_array()?
        .iter()
        .find(|x| {
            x["measure"] == measure
                && x["run"]
                    .as_str()
                    .is_some_and(|r| Path::new(r).file_name() == Some(run.as_ref()))
        })
        .cloned()
}

/// mean and CI of a fingerprint summary's rho_step / rho_token.
fn rho(summary: &Option<Value>, key: &str) -> (Option<f64>, Option<(f64, f64)>) {
    match summary {
        Some(s) => (s[key]["mean"].as_f64(), ci(&s[key]["mean_ci95"])),
        None => (None, None),
    }
}

/// Responses with a defined rho behind a mean.
fn defined(summary: &Option<Value>, key: &str) -> Option<u64> {
    summary.as_ref()?[key]["n"].as_u64()
}

/// "mean [CI] (n)" of a summary's rho.
fn rho_cell(summary: &Option<Value>, key: &str) -> String {
    let (m, c) = rho(summary, key);
    match defined(summary, key) {
        Some(n) if m.is_some() => format!("{} (n = {n})", with_ci(m, c)),
        _ => with_ci(m, c),
    }
}

/// The responses a summary's mean rho leaves out, with reasons.
fn excluded(summary: &Option<Value>, key: &str) -> Vec<String> {
    summary
        .as_ref()
        .and_then(|s| s[format!("{key}_excluded")].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "`{}`: {}",
                e["id"].as_str().unwrap_or("?"),
                e["reason"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// Across seeds: each algorithm's held-out accuracy after RL and its rollouts' accuracy and
/// rho, as the mean over seeds with a 95% t-interval, in a table and as curves over the RL
/// steps (`rl-seeds.svg`).
fn seeds_section(
    b: &mut Vec<Block>,
    report: &Path,
    cfg: &StudyConfig,
    runs: &[crate::stages::RlRun],
    metrics: &[(String, &'static str, Vec<Value>)],
    ev: &dyn Fn(&str) -> Option<Value>,
) {
    use egi_report::plot::{Curve, Panel};
    use egi_report::stats::{mean, t_interval};
    let arith = |name: &str| -> Option<f64> {
        let v: Option<Vec<f64>> = (1..=MAX_STEPS)
            .map(|k| acc_of(&ev(&format!("{name}-arith{k}"))))
            .collect();
        mean(&v?) // the sets have the same size
    };
    let gsm = |name: &str| acc_of(&ev(&format!("{name}-gsm8k")));
    let cell = |v: &[f64]| match (t_interval(v), v) {
        (Some((m, lo, hi)), _) => format!("{m:.3} [{lo:.3}, {hi:.3}] ({} seeds)", v.len()),
        (None, [x]) => format!("{x:.3} (one seed)"),
        _ => "n/a".into(),
    };
    let logs = |algo: &'static str| metrics.iter().filter(move |(_, a, _)| *a == algo);
    let over_steps = |ms: &[Value], k: &str| -> Option<f64> {
        mean(&ms.iter().filter_map(|x| x[k].as_f64()).collect::<Vec<_>>())
    };
    let one = |x: Option<f64>| {
        x.map(|x| format!("{x:.3} (one model)"))
            .unwrap_or("n/a".into())
    };
    let mut rows = vec![vec![
        format!("SFT model (step {}), the start", cfg.sft_steps),
        one(arith("sft")),
        one(gsm("sft")),
        "-".into(),
        "-".into(),
    ]];
    let (mut held, mut held_gsm, mut roll_acc, mut roll_rho) = (vec![], vec![], vec![], vec![]);
    for (ai, (label, algo)) in ALGOS.iter().enumerate() {
        let names: Vec<&str> = runs
            .iter()
            .filter(|r| r.algo == *algo)
            .map(|r| r.name.as_str())
            .collect();
        let a: Vec<f64> = names.iter().filter_map(|n| arith(n)).collect();
        let g: Vec<f64> = names.iter().filter_map(|n| gsm(n)).collect();
        let ra: Vec<f64> = logs(algo)
            .filter_map(|(_, _, ms)| over_steps(ms, "accuracy"))
            .collect();
        let rr: Vec<f64> = logs(algo)
            .filter_map(|(_, _, ms)| over_steps(ms, "rho_mean"))
            .collect();
        rows.push(vec![
            label.to_string(),
            cell(&a),
            cell(&g),
            cell(&ra),
            cell(&rr),
        ]);
        // Held-out accuracy: the SFT model at step 0 (one model, no spread), then after RL.
        for (set, after, out) in [("arith", &a, &mut held), ("gsm8k", &g, &mut held_gsm)] {
            let sft = if set == "arith" {
                arith("sft")
            } else {
                gsm("sft")
            };
            if let (Some(s0), Some((m, lo, hi))) =
                (sft, t_interval(after).or(after.first().map(|&x| (x, x, x))))
            {
                out.push(Curve {
                    run: ai,
                    x: vec![0.0, cfg.rl_steps as f64],
                    y: vec![s0, m],
                    ci: Some(vec![(s0, s0), (lo, hi)]),
                });
            }
        }
        // Rollouts: at each step, over the seeds that logged the value.
        for (k, out) in [("accuracy", &mut roll_acc), ("rho_mean", &mut roll_rho)] {
            let mut by_step: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for (_, _, ms) in logs(algo) {
                for x in ms {
                    if let (Some(st), Some(v)) = (x["step"].as_i64(), x[k].as_f64()) {
                        by_step.entry(st).or_default().push(v);
                    }
                }
            }
            if by_step.is_empty() {
                continue;
            }
            let mut c = Curve {
                run: ai,
                ..Curve::default()
            };
            let mut ci = vec![];
            for (st, v) in by_step {
                let (m, lo, hi) = t_interval(&v).unwrap_or((v[0], v[0], v[0]));
                c.x.push(st as f64);
                c.y.push(m);
                ci.push((lo, hi));
            }
            c.ci = Some(ci);
            out.push(c);
        }
    }
    b.push(Block::P(
        "Across seeds: each seed's number, then their mean with a 95% Student t interval over the seeds \
         (the spread of the training runs, not of the problems: the paired tests above are over problems). \
         Held-out: accuracy after RL over the arithmetic sets of one to four steps together, and on the \
         GSM8K subset; rollouts: the mean over a run's steps (rho only where measured)."
            .into(),
    ));
    b.push(Block::Table(
        vec![
            "algorithm".into(),
            "held-out arithmetic accuracy after RL [95% t CI over seeds]".into(),
            "held-out GSM8K accuracy after RL".into(),
            "rollout accuracy, mean over steps".into(),
            "rollout rho_step, mean over steps".into(),
        ],
        rows,
    ));
    let panel = |name: &str, curves: Vec<Curve>| Panel {
        name: name.into(),
        curves,
        points: true, // markers and error bars: few steps, few seeds
    };
    let panels = [
        panel("held-out accuracy, arithmetic (SFT at 0)", held),
        panel("held-out accuracy, GSM8K (SFT at 0)", held_gsm),
        panel("rollout accuracy", roll_acc),
        panel("rollout rho_step", roll_rho),
    ];
    let names: Vec<String> = ALGOS.iter().map(|(l, _)| l.to_string()).collect();
    match egi_report::plot::curves(
        &report.join("rl-seeds"),
        &names,
        &panels,
        "RL step",
        "GRPO and CorR-PO across seeds: mean and 95% t-interval",
        0.0,
    ) {
        Ok(()) => b.push(Block::Img(
            "rl-seeds.svg".into(),
            "Mean over seeds with its 95% t-interval at each RL step; held-out accuracy from the SFT \
             model (step 0) to the end of RL"
                .into(),
        )),
        Err(e) => b.push(Block::P(format!("(rl-seeds figure not drawn: {e:#})"))),
    }
}

fn copy_plot(from: &Path, report: &Path, name: &str, blocks: &mut Vec<Block>, caption: &str) {
    if std::fs::copy(from, report.join(name)).is_ok() {
        blocks.push(Block::Img(name.into(), caption.into()));
    } else {
        blocks.push(Block::P(format!(
            "(plot {} not found: its stage has not run)",
            from.display()
        )));
    }
}

/// Per-item values of a run: an eval summary's `per_problem_pass@1`, or the `key` (rho_step,
/// rho_token) of each text in a fingerprint's responses.jsonl, by id.
fn per_problem(summary: &Option<Value>) -> BTreeMap<String, f64> {
    summary
        .as_ref()
        .and_then(|s| s["per_problem_pass@1"].as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_f64()?)))
        .collect()
}

fn per_text(dir: &Path, run: &str, key: &str) -> BTreeMap<String, f64> {
    read_jsonl(&dir.join("fp").join(run).join("responses.jsonl"))
        .into_iter()
        .filter_map(|r| {
            let id = match &r["id"] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            Some((id, r[key].as_f64()?))
        })
        .collect()
}

/// Paired test of several runs (seeds) against one baseline: on the items every run and the
/// baseline have, each item's value averaged over the runs minus the baseline's. Same fields
/// as a `compare.json` test (mean_difference, difference_ci95, p_value, pairs, uninformative),
/// plus each run's own mean difference. `None` without runs or shared items.
fn pooled(base: &BTreeMap<String, f64>, runs: &[BTreeMap<String, f64>]) -> Option<Value> {
    use egi_report::stats;
    if runs.is_empty() || runs.iter().any(|r| r.is_empty()) {
        return None;
    }
    let ids: Vec<&String> = base
        .keys()
        .filter(|id| runs.iter().all(|r| r.contains_key(*id)))
        .collect();
    if ids.is_empty() {
        return None;
    }
    let x0: Vec<f64> = ids.iter().map(|id| base[*id]).collect();
    let x1: Vec<f64> = ids
        .iter()
        .map(|id| runs.iter().map(|r| r[*id]).sum::<f64>() / runs.len() as f64)
        .collect();
    let diff: Vec<f64> = x1.iter().zip(&x0).map(|(a, b)| a - b).collect();
    let per_run: Vec<Option<f64>> = runs
        .iter()
        .map(|r| stats::mean(&ids.iter().map(|id| r[*id] - base[*id]).collect::<Vec<_>>()))
        .collect();
    Some(json!({
        "mean_difference": stats::mean(&diff),
        "difference_ci95": stats::bootstrap_ci(&diff, stats::Stat::Mean, 2000, 0.95, 0).map(|(l, h)| [l, h]),
        "p_value": stats::paired_permutation_test(&x1, &x0, 10_000, 0),
        "pairs": ids.len(),
        // Items whose averaged difference is not 0: the only ones that carry information.
        "differing": diff.iter().filter(|&&x| x != 0.0).count(),
        "runs": runs.len(),
        "per_run_mean_difference": per_run,
        "uninformative": stats::no_power(&diff, ALPHA),
    }))
}

/// Each item's value averaged over the runs (seeds), on the items every run has; empty when
/// some run has none.
fn seed_average(runs: &[BTreeMap<String, f64>]) -> BTreeMap<String, f64> {
    if runs.is_empty() || runs.iter().any(|m| m.is_empty()) {
        return BTreeMap::new();
    }
    runs[0]
        .keys()
        .filter(|id| runs.iter().all(|m| m.contains_key(*id)))
        .map(|id| {
            let sum: f64 = runs.iter().map(|m| m[id]).sum();
            (id.clone(), sum / runs.len() as f64)
        })
        .collect()
}

/// A pooled test as "difference [CI] (p, n pairs; per seed: ...)".
fn pooled_cell(t: &Option<Value>) -> String {
    match t {
        Some(x) => {
            let seeds: Vec<String> = x["per_run_mean_difference"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| f3(v.as_f64()))
                .collect();
            format!("{}; per seed {}", paired_cell(t), seeds.join(", "))
        }
        None => "n/a".into(),
    }
}

fn acc_of(s: &Option<Value>) -> Option<f64> {
    s.as_ref()?["metrics"]["pass@1"]["mean"].as_f64()
}

fn acc_cell(s: &Option<Value>) -> String {
    let e = s.as_ref().map(|s| s["metrics"]["pass@1"].clone());
    acc_ci(
        e.as_ref().and_then(|e| e["mean"].as_f64()),
        e.as_ref().and_then(|e| ci(&e["wilson95"])),
    )
}

/// Build the report's blocks from the outputs in `dir`.
fn blocks(
    dir: &Path,
    cfg: &StudyConfig,
    stages: &[Stage],
    report: &Path,
    threads: usize,
) -> Vec<Block> {
    let mut b = vec![];
    let fp = |name: &str| read_json(&dir.join("fp").join(name).join("summary.json"));
    let ev = |name: &str| read_json(&dir.join("eval").join(name).join("summary.json"));
    let last = cfg.sft_steps;
    let runs = rl_runs(cfg);

    // Setup.
    b.push(Block::P(format!(
        "Model: `{}`. Everything below was computed by `egi study` and is regenerated by rerunning it; \
         the settings are in `study_config.json`, every command in the last section. The design: fine-tune \
         the model on exact step-by-step solutions of generated arithmetic problems until it reasons in \
         steps (a small reasoning model), measure its fingerprint along the way, then train it further \
         with GRPO and with CorR-PO from the same checkpoint, over {} seeds each.",
        cfg.model, cfg.rl_seeds
    )));
    let secs = stage_seconds(dir);
    let total: f64 = secs.iter().map(|(_, s)| s).filter(|s| s.is_finite()).sum();
    b.push(Block::P(format!(
        "{} of {} stages finished, {:.1} min of compute in total ({} threads).",
        secs.len(),
        stages.len(),
        total / 60.0,
        threads
    )));

    // 1. SFT.
    b.push(Block::H2(
        "1. SFT on exact worked solutions: a small reasoning model".into(),
    ));
    b.push(Block::P(format!(
        "{} steps of {} examples from {} generated problems of one to {MAX_STEPS} steps, each with an exact \
         worked solution (a line per step ending in its value, then a boxed answer; several layouts and \
         wordings), lr {}, responses cut at {} tokens, the `boxed` prompt. At step 0 and every {} steps: \
         greedy accuracy on {} held-out problems of two and three steps (Wilson 95% CI), and step-level rho \
         (mean-logit) on (a) the checkpoint's own greedy answers to {} held-out problems (paired with step 0 \
         by prompt) and (b) the exact solutions of those problems, the same texts for every checkpoint \
         (paired by text). Mean over responses with a defined rho (n), bootstrap 95% CI; paired differences \
         with a sign-flip permutation test.",
        cfg.sft_steps,
        cfg.sft_batch,
        cfg.sft_traces,
        cfg.sft_lr,
        cfg.sft_max_len,
        cfg.sft_fp_every,
        cfg.eval_arith,
        cfg.fp_prompts
    )));
    let sft_metrics = read_jsonl(&dir.join("sft/metrics.jsonl"));
    let loss_since = |from: usize, to: usize| -> Option<f64> {
        let v: Vec<f64> = sft_metrics
            .iter()
            .filter(|m| {
                m["step"]
                    .as_u64()
                    .is_some_and(|s| s as usize > from && s as usize <= to)
            })
            .filter_map(|m| m["loss"].as_f64())
            .collect();
        egi_report::stats::mean(&v)
    };
    let cmp_sft = read_json(&dir.join("fp/cmp-sft/compare.json"));
    let cmp_fixed = read_json(&dir.join("fp/cmp-sft-fixed/compare.json"));
    let steps = cfg.sft_fp_steps();
    let mut rows = vec![];
    let mut left_out = vec![];
    for (i, &step) in steps.iter().enumerate() {
        let (own, fixed) = (fp(&format!("sft-{step}")), fp(&format!("sft-{step}-fixed")));
        let test = |cmp: &Option<Value>, run: String| {
            if step == 0 {
                "-".into()
            } else {
                paired_cell(&paired_test(cmp, &run, "rho_step"))
            }
        };
        rows.push(vec![
            step.to_string(),
            if step == 0 {
                "-".into()
            } else {
                loss_since(steps[i - 1], step)
                    .map(|l| format!("{l:.3}"))
                    .unwrap_or("n/a".into())
            },
            acc_cell(&ev(&format!("sft-{step}-arith23"))),
            rho_cell(&own, "rho_step"),
            test(&cmp_sft, format!("sft-{step}")),
            rho_cell(&fixed, "rho_step"),
            test(&cmp_fixed, format!("sft-{step}-fixed")),
        ]);
        for (what, s) in [("own answers", &own), ("fixed texts", &fixed)] {
            let ex = excluded(s, "rho_step");
            if !ex.is_empty() {
                left_out.push(format!("step {step}, {what}: {}", ex.join("; ")));
            }
        }
    }
    b.push(Block::Table(
        vec![
            "SFT step".into(),
            "mean training loss since the previous row".into(),
            "held-out accuracy, 2-3 steps [95% CI]".into(),
            "(a) rho_step, own answers (n)".into(),
            "(a) paired difference vs step 0 (p, prompts)".into(),
            "(b) rho_step, fixed texts (n)".into(),
            "(b) paired difference vs step 0 (p, texts)".into(),
        ],
        rows,
    ));
    b.push(Block::P(if left_out.is_empty() {
        "Left out of the means: none.".into()
    } else {
        format!("Left out of the means: {}.", left_out.join(". "))
    }));
    let token_test = |kind: &str, measure: &str| {
        paired_test(
            &read_json(&dir.join(format!("fp/cmp-sft{kind}-token/compare.json"))),
            &format!("sft-{last}{kind}-token"),
            measure,
        )
    };
    let (sft_tok_a, sft_tok_b) = (
        token_test("", "rho_token"),
        token_test("-fixed", "rho_token"),
    );
    let (sft_mean_a, sft_mean_b) = (token_test("", "rho_step"), token_test("-fixed", "rho_step"));
    let mut rows = vec![];
    for (label, kind, tok, mean) in [
        (
            "(a) own answers, paired by prompt",
            "",
            &sft_tok_a,
            &sft_mean_a,
        ),
        (
            "(b) fixed texts, paired by text",
            "-fixed",
            &sft_tok_b,
            &sft_mean_b,
        ),
    ] {
        let (t0, tn) = (
            fp(&format!("sft-0{kind}-token")),
            fp(&format!("sft-{last}{kind}-token")),
        );
        rows.push(vec![
            label.to_string(),
            rho_cell(&t0, "rho_token"),
            rho_cell(&tn, "rho_token"),
            paired_cell(tok),
            paired_cell(mean),
        ]);
    }
    b.push(Block::P(format!(
        "Token level (the level of the paper's figures: one gradient per token) on the first {} texts, step 0 \
         against step {last}; METHOD's `mean` step rho from the same gradients beside it.",
        cfg.fp_token_prompts
    )));
    b.push(Block::Table(
        vec![
            "texts".into(),
            "rho_token, step 0 (n)".into(),
            format!("rho_token, step {last} (n)"),
            "paired difference, rho_token (p, pairs)".into(),
            "paired difference, rho_step (mean) (p, pairs)".into(),
        ],
        rows,
    ));
    copy_plot(
        &dir.join("fp/cmp-sft/compare.svg"),
        report,
        "sft-rho.svg",
        &mut b,
        "(a) Mean rho_step with 95% CIs at each SFT checkpoint, own answers (left to right: step 0 to the last)",
    );
    copy_plot(
        &dir.join("fp/cmp-sft-fixed/compare.svg"),
        report,
        "sft-rho-fixed.svg",
        &mut b,
        "(b) Mean rho_step with 95% CIs at each SFT checkpoint, the fixed texts",
    );
    copy_plot(
        &dir.join("plots/sft/curves.svg"),
        report,
        "sft-curves.svg",
        &mut b,
        "SFT training curves",
    );
    b.push(Block::P(
        "Paper: during SFT on reasoning traces rho falls fast (Llama-3.1-8B: +0.036 -> -0.468 within 200 steps, \
         -0.606 after 8000)."
            .into(),
    ));

    // 2. RL.
    b.push(Block::H2("2. GRPO and CorR-PO from the SFT model".into()));
    b.push(Block::P(format!(
        "Both from the SFT model (step {last}), seeds {:?}, {} steps of {} prompts x {} responses x {} new \
         tokens, lr {}, on {} generated problems of one to {MAX_STEPS} steps; CorR-PO adds lambda = {} times \
         -(1 + rho_step) to the reward. Greedy accuracy on held-out problems (Wilson 95% CI), {} per \
         arithmetic set and {} from GSM8K test, {} new tokens. An RL column gives the mean over seeds and \
         each seed's accuracy. Differences are paired by problem, each problem's accuracy averaged over the \
         seeds (bootstrap 95% CI over problems, sign-flip permutation p), with each seed's own difference.",
        cfg.rl_seed_list(),
        cfg.rl_steps,
        cfg.rl_batch_prompts,
        cfg.rl_group_size,
        cfg.rl_max_new_tokens,
        cfg.rl_lr,
        cfg.rl_train_problems,
        cfg.rl_lambda,
        cfg.eval_arith,
        cfg.eval_gsm8k,
        cfg.eval_max_new_tokens
    )));
    let by_algo = |algo: &str, set: &str| -> Vec<Option<Value>> {
        runs.iter()
            .filter(|r| r.algo == algo)
            .map(|r| ev(&format!("{}-{set}", r.name)))
            .collect()
    };
    let mut rows = vec![];
    let mut diffs: Vec<(String, String, Option<Value>)> = vec![];
    for (label, set) in eval_sets() {
        let sft = ev(&format!("sft-{set}"));
        let mut row = vec![label.clone(), acc_cell(&sft)];
        for (_, algo) in ALGOS {
            let accs: Vec<Option<f64>> = by_algo(algo, &set).iter().map(acc_of).collect();
            let have: Vec<f64> = accs.iter().flatten().copied().collect();
            row.push(match egi_report::stats::mean(&have) {
                Some(m) if have.len() == accs.len() => format!(
                    "{m:.3} ({})",
                    have.iter()
                        .map(|a| format!("{a:.3}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => "n/a".into(),
            });
        }
        rows.push(row);
        let maps = |algo: &str| -> Vec<BTreeMap<String, f64>> {
            by_algo(algo, &set).iter().map(per_problem).collect()
        };
        let sft_map = per_problem(&sft);
        diffs.push((
            "GRPO - SFT".into(),
            label.clone(),
            pooled(&sft_map, &maps("grpo")),
        ));
        diffs.push((
            "CorR-PO - SFT".into(),
            label.clone(),
            pooled(&sft_map, &maps("corr-po")),
        ));
        // CorR-PO against GRPO: seed k against seed k, averaged.
        let g = maps("grpo");
        let c = maps("corr-po");
        diffs.push((
            "CorR-PO - GRPO".into(),
            label,
            pooled(&seed_average(&g), &c),
        ));
    }
    // Every held-out problem together (keys "set/id"): the one test an accuracy claim is
    // decided on, so that five sets are not five chances at p < 0.05.
    let union = |name: &str| -> BTreeMap<String, f64> {
        eval_sets()
            .into_iter()
            .flat_map(|(_, set)| {
                per_problem(&ev(&format!("{name}-{set}")))
                    .into_iter()
                    .map(move |(id, x)| (format!("{set}/{id}"), x))
            })
            .collect()
    };
    let unions = |algo: &str| -> Vec<BTreeMap<String, f64>> {
        runs.iter()
            .filter(|r| r.algo == algo)
            .map(|r| union(&r.name))
            .collect()
    };
    let (sft_all, g_all, c_all) = (union("sft"), unions("grpo"), unions("corr-po"));
    diffs.push((
        "GRPO - SFT".into(),
        ALL_SETS.into(),
        pooled(&sft_all, &g_all),
    ));
    diffs.push((
        "CorR-PO - SFT".into(),
        ALL_SETS.into(),
        pooled(&sft_all, &c_all),
    ));
    diffs.push((
        "CorR-PO - GRPO".into(),
        ALL_SETS.into(),
        pooled(&seed_average(&g_all), &c_all),
    ));
    let mut head = vec![
        "held-out set".to_string(),
        format!("SFT model (step {last})"),
    ];
    head.extend(ALGOS.iter().map(|(l, _)| format!("{l}: mean (per seed)")));
    b.push(Block::Table(head, rows));
    b.push(Block::Table(
        vec![
            "difference".into(),
            "set".into(),
            "accuracy difference [95% CI] (p, problems); per seed".into(),
            "problems that differ (seed-averaged)".into(),
        ],
        diffs
            .iter()
            .map(|(d, set, t)| {
                vec![
                    d.clone(),
                    set.clone(),
                    pooled_cell(t),
                    t.as_ref()
                        .map(|t| {
                            format!(
                                "{}{}",
                                t["differing"],
                                if t["uninformative"].is_string() {
                                    " (uninformative)"
                                } else {
                                    ""
                                }
                            )
                        })
                        .unwrap_or("n/a".into()),
                ]
            })
            .collect(),
    ));
    // Training logs and the cost of a step.
    let metrics: Vec<(String, &'static str, Vec<Value>)> = runs
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.algo,
                read_jsonl(&dir.join("rl").join(&r.name).join("metrics.jsonl")),
            )
        })
        .collect();
    let col =
        |ms: &[Value], k: &str| -> Vec<f64> { ms.iter().filter_map(|x| x[k].as_f64()).collect() };
    let window = |v: &[f64], first: bool| -> Option<f64> {
        let w = v.len().min(5);
        egi_report::stats::mean(if first { &v[..w] } else { &v[v.len() - w..] })
    };
    let mut rows = vec![];
    for (name, _, ms) in &metrics {
        let acc = col(ms, "accuracy");
        let rho = col(ms, "rho_mean");
        rows.push(vec![
            name.clone(),
            ms.len().to_string(),
            format!(
                "{} -> {}",
                window(&acc, true)
                    .map(|x| format!("{x:.3}"))
                    .unwrap_or("n/a".into()),
                window(&acc, false)
                    .map(|x| format!("{x:.3}"))
                    .unwrap_or("n/a".into())
            ),
            format!("{} -> {}", f3(window(&rho, true)), f3(window(&rho, false))),
        ]);
    }
    b.push(Block::Table(
        vec![
            "run".into(),
            "steps logged".into(),
            "rollout accuracy, first 5 -> last 5 steps".into(),
            "mean rho_step of rollouts, first 5 -> last 5 steps".into(),
        ],
        rows,
    ));
    seeds_section(&mut b, report, cfg, &runs, &metrics, &ev);
    let phase = |algo: &str, k: &str| -> Option<f64> {
        let v: Vec<f64> = metrics
            .iter()
            .filter(|(_, a, _)| *a == algo)
            .flat_map(|(_, _, ms)| {
                if k == "less_fingerprint" {
                    ms.iter()
                        .filter_map(|x| {
                            Some(
                                x["seconds_step"].as_f64()?
                                    - x["seconds_fingerprint"].as_f64().unwrap_or(0.0),
                            )
                        })
                        .collect()
                } else if k == "fingerprint_rate" {
                    ms.iter()
                        .filter_map(|x| {
                            let s = x["seconds_fingerprint"].as_f64()?;
                            (s > 0.0).then_some(x["fingerprint_gflop"].as_f64()? / s)
                        })
                        .collect()
                } else {
                    col(ms, k)
                }
            })
            .collect();
        egi_report::stats::median(&v)
    };
    let mut rows = vec![];
    for (label, k) in [
        ("rollout (generation)", "seconds_rollout"),
        ("rewards (verifier)", "seconds_reward"),
        ("fingerprint of the rollouts", "seconds_fingerprint"),
        (
            "whole step (with the update); the ratio to GRPO's own step, less its fingerprint",
            "seconds_step",
        ),
        ("whole step less the fingerprint", "less_fingerprint"),
        ("fingerprint work, GFLOP (backward)", "fingerprint_gflop"),
        ("fingerprint rate achieved, GFLOP/s", "fingerprint_rate"),
    ] {
        let (g, c) = (phase("grpo", k), phase("corr-po", k));
        // GRPO's fingerprint (measured, not rewarded) is the same work as CorR-PO's: a
        // ratio of the two would compare nothing.
        let work = k.starts_with("fingerprint_");
        // GRPO's median step mixes the seed that measured rho with those that did not.
        let base = if k == "seconds_step" {
            phase("grpo", "less_fingerprint")
        } else {
            g
        };
        rows.push(vec![
            label.into(),
            g.map(|x| format!("{x:.2}")).unwrap_or("n/a".into()),
            c.map(|x| format!("{x:.2}")).unwrap_or("n/a".into()),
            match (base, c) {
                (Some(g), Some(c)) if g > 0.0 && !work => format!("{:.2}", c / g),
                _ => "-".into(),
            },
        ]);
    }
    b.push(Block::P(
        "The cost of a step, median over every step of every seed (from metrics.jsonl; seconds unless \
         the row says otherwise). With \
         `rl_measure_rho` GRPO's first seed measures its rollouts' rho as CorR-PO does, so GRPO's own \
         cost is its step less the fingerprint. The fingerprint's work counts its backward passes \
         (2 x non-embedding parameters x prefix per step target; n/a for runs logged before egi \
         counted it); its floor on a machine is that work over the machine's matmul rate \
         (`egi bench --probe`; docs/performance.md)."
            .into(),
    ));
    b.push(Block::Table(
        vec![
            "phase".into(),
            "GRPO".into(),
            "CorR-PO".into(),
            "CorR-PO / GRPO".into(),
        ],
        rows,
    ));
    copy_plot(
        &dir.join("plots/rl/curves.svg"),
        report,
        "rl-curves.svg",
        &mut b,
        "GRPO and CorR-PO training curves, every seed",
    );

    // The fingerprint after RL on the fixed texts.
    let base_fixed = format!("sft-{last}-fixed");
    let cmp = read_json(&dir.join("fp/cmp-rl/compare.json"));
    let cmp_token = read_json(&dir.join("fp/cmp-rl-token/compare.json"));
    let mut rows = vec![vec![
        format!("SFT model (step {last})"),
        rho_cell(&fp(&format!("{base_fixed}-token")), "rho_token"),
        "-".into(),
        rho_cell(&fp(&base_fixed), "rho_step"),
        "-".into(),
    ]];
    for r in &runs {
        let m = format!("{}-fixed", r.name);
        let first = r.seed == cfg.seed;
        rows.push(vec![
            r.name.clone(),
            if first {
                rho_cell(&fp(&format!("{m}-token")), "rho_token")
            } else {
                "-".into()
            },
            if first {
                paired_cell(&paired_test(&cmp_token, &format!("{m}-token"), "rho_token"))
            } else {
                "-".into()
            },
            rho_cell(&fp(&m), "rho_step"),
            paired_cell(&paired_test(&cmp, &m, "rho_step")),
        ]);
    }
    b.push(Block::P(format!(
        "The fingerprint after RL on the fixed texts (the exact solutions of the {} held-out problems), paired \
         by text with the SFT model's: step level (mean-logit) for every seed, token level for seed {} on the \
         first {} texts.",
        cfg.fp_prompts, cfg.seed, cfg.fp_token_prompts
    )));
    b.push(Block::Table(
        vec![
            "model".into(),
            "rho_token (n)".into(),
            "paired difference vs SFT model (p, texts)".into(),
            "rho_step (n)".into(),
            "paired difference vs SFT model (p, texts)".into(),
        ],
        rows,
    ));
    let base_rho = per_text(dir, &base_fixed, "rho_step");
    let rl_rho: Vec<(&str, Option<Value>, Option<Value>)> = ALGOS
        .iter()
        .map(|(label, algo)| {
            let maps: Vec<BTreeMap<String, f64>> = runs
                .iter()
                .filter(|r| r.algo == *algo)
                .map(|r| per_text(dir, &format!("{}-fixed", r.name), "rho_step"))
                .collect();
            let token = paired_test(
                &cmp_token,
                &format!("{algo}-s{}-fixed-token", cfg.seed),
                "rho_token",
            );
            (*label, pooled(&base_rho, &maps), token)
        })
        .collect();
    b.push(Block::P(format!(
        "Pooled over seeds (each text's rho_step averaged over the seeds, paired with the SFT model's): {}.",
        rl_rho
            .iter()
            .map(|(l, t, _)| format!("{l} {}", pooled_cell(t)))
            .collect::<Vec<_>>()
            .join("; ")
    )));
    copy_plot(
        &dir.join("fp/cmp-rl/compare.svg"),
        report,
        "rl-rho.svg",
        &mut b,
        "Mean rho_step with 95% CIs on the fixed texts: the SFT model, then every RL run",
    );
    b.push(Block::P(
        "Paper: GRPO from the base model drives rho negative (-0.36 within 100 steps); CorR-PO improves \
         accuracy over GRPO on AIME24 / MATH-500 / GSM8K with 1.5B-8B models."
            .into(),
    ));

    // 3. Verdicts.
    b.push(Block::H2("3. Verdicts".into()));
    let (own_t, own_s) = (fp(&format!("sft-{last}-token")), fp(&format!("sft-{last}")));
    let base_t = fp("sft-0-token");
    let sign = |s: &Option<Value>, key: &str| {
        let (_, c) = rho(s, key);
        verdict(c, defined(s, key), -1.0)
    };
    let sft_step_a = paired_test(&cmp_sft, &format!("sft-{last}"), "rho_step");
    let sft_step_b = paired_test(&cmp_fixed, &format!("sft-{last}-fixed"), "rho_step");
    let acc_test = |d: &str| -> Option<Value> {
        diffs
            .iter()
            .find(|(x, set, _)| x == d && set == ALL_SETS)
            .and_then(|(_, _, t)| t.clone())
    };
    let acc_text = |d: &str| -> String {
        let per_set = diffs
            .iter()
            .filter(|(x, set, _)| x == d && set != ALL_SETS)
            .map(|(_, set, t)| {
                format!(
                    "{set}: {}",
                    t.as_ref()
                        .map(|t| with_ci(t["mean_difference"].as_f64(), ci(&t["difference_ci95"])))
                        .unwrap_or("n/a".into())
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "{ALL_SETS}: {}; by set: {per_set}",
            pooled_cell(&acc_test(d))
        )
    };
    let mut rows = vec![
        vec![
            "A reasoning model shows negative rho".into(),
            "-0.649 (token-level, reasoning models)".into(),
            format!(
                "SFT model, own answers: token {}, step {}; the default model (step 0): token {}",
                rho_cell(&own_t, "rho_token"),
                rho_cell(&own_s, "rho_step"),
                rho_cell(&base_t, "rho_token")
            ),
            format!(
                "SFT model: token {}; step {}",
                sign(&own_t, "rho_token"),
                sign(&own_s, "rho_step")
            ),
        ],
        vec![
            "SFT on reasoning traces lowers rho".into(),
            "token-level +0.036 -> -0.468 in 200 steps (Llama-3.1-8B)".into(),
            format!(
                "step {last} vs step 0: token (a) {}, (b) {}; step (a) {}, (b) {}",
                paired_cell(&sft_tok_a),
                paired_cell(&sft_tok_b),
                paired_cell(&sft_step_a),
                paired_cell(&sft_step_b)
            ),
            format!(
                "token: (a) {}, (b) {}; step: (a) {}, (b) {}",
                paired_verdict(&sft_tok_a, -1.0),
                paired_verdict(&sft_tok_b, -1.0),
                paired_verdict(&sft_step_a, -1.0),
                paired_verdict(&sft_step_b, -1.0)
            ),
        ],
    ];
    for (label, pooled_step, token) in &rl_rho {
        rows.push(vec![
            format!("{label} lowers rho"),
            "-0.36 within 100 GRPO steps".into(),
            format!(
                "fixed texts, paired by text: step, pooled over seeds {}; token, seed {} {}",
                pooled_cell(pooled_step),
                cfg.seed,
                paired_cell(token)
            ),
            format!(
                "step: {}; token: {}",
                paired_verdict(pooled_step, -1.0),
                paired_verdict(token, -1.0)
            ),
        ]);
    }
    rows.push(vec![
        "GRPO raises held-out accuracy".into(),
        "the premise of RLVR".into(),
        acc_text("GRPO - SFT"),
        paired_verdict(&acc_test("GRPO - SFT"), 1.0),
    ]);
    rows.push(vec![
        "CorR-PO is more accurate than GRPO".into(),
        "higher Pass@1 on AIME24 / MATH-500 / GSM8K".into(),
        acc_text("CorR-PO - GRPO"),
        paired_verdict(&acc_test("CorR-PO - GRPO"), 1.0),
    ]);
    b.push(Block::Table(
        vec![
            "claim".into(),
            "paper".into(),
            "this study (95% CIs)".into(),
            "verdict".into(),
        ],
        rows,
    ));
    b.push(Block::P(
        "Rules (level 0.05): a claim about the sign of rho is supported when the 95% CI of the mean excludes 0 \
         on the predicted side, not supported when it excludes 0 on the other side, inconclusive otherwise. A \
         change (of rho, of accuracy) is tested on paired differences (SFT: the same prompt or the same text \
         at both checkpoints; RL: the same text or problem, averaged over the seeds) with an exact or sampled \
         sign-flip permutation test: supported when the mean difference has the predicted sign with p < 0.05, \
         not supported when it has the other sign with p < 0.05, inconclusive otherwise. An accuracy claim \
         is decided by one such test over every held-out problem of every set together (five tests, one per \
         set, would give five chances at p < 0.05); the sets' own differences say where a change lies. \
         Uninformative, unlike inconclusive, means the comparison could not have \
         found an effect: fewer than 6 responses with a defined rho or fewer than 6 nonzero paired \
         differences (with n nonzero values the exact test's smallest p is 2^(1-n), above 0.05 for n <= 5). \
         Token-level verdicts are the ones to set beside the paper's token-level figures."
            .into(),
    ));
    b.push(Block::P(
        "Caveats: a 135M-parameter model fine-tuned on synthetic arithmetic is a reasoning model only in the \
         narrow sense of writing one exact step per line; the paper's models are 1.5B-8B and trained on \
         competition mathematics. Few prompts per measurement give wide CIs; RL budgets are small \
         fractions of the paper's; pooling over seeds averages each problem's outcome over the seeds, so the \
         CI is over problems, and the seed-to-seed spread is shown beside it. The rollouts' rho is measured \
         under the policy that sampled them, on answers that change as it learns; the fixed texts measure \
         the change of the model alone."
            .into(),
    ));

    // 4. Commands.
    b.push(Block::H2("4. Commands".into()));
    b.push(Block::P(
        "Run in this order by `egi study` (each stage's log is in logs/, its time in stages/):"
            .into(),
    ));
    let mut lines = String::new();
    let secs_of = |name: &str| secs.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    for st in stages {
        let t = secs_of(&st.name)
            .map(|s| format!("# {:.0} s", s))
            .unwrap_or_else(|| "# not run".into());
        lines.push_str(&format!("{}   {t}\n", command_line(st)));
    }
    b.push(Block::Code(lines));
    b.push(Block::P("Settings (study_config.json):".into()));
    b.push(Block::Code(
        serde_json::to_string_pretty(cfg).unwrap_or_default(),
    ));
    b
}

fn to_markdown(title: &str, blocks: &[Block]) -> String {
    let mut s = format!("# {title}\n\n");
    for b in blocks {
        match b {
            Block::H2(t) => s.push_str(&format!("## {t}\n\n")),
            Block::P(t) => s.push_str(&format!("{t}\n\n")),
            Block::Table(h, rows) => {
                s.push_str(&format!("| {} |\n", h.join(" | ")));
                s.push_str(&format!("|{}\n", "---|".repeat(h.len())));
                for r in rows {
                    s.push_str(&format!("| {} |\n", r.join(" | ")));
                }
                s.push('\n');
            }
            Block::Img(f, c) => s.push_str(&format!("![{c}]({f})\n\n*{c}*\n\n")),
            Block::Code(t) => s.push_str(&format!("```\n{}\n```\n\n", t.trim_end())),
        }
    }
    s
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown's inline code spans as HTML.
fn inline(t: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(t).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
        } else {
            out.push_str(part);
        }
    }
    out
}

fn to_html(title: &str, blocks: &[Block], report: &Path) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:4px 8px;text-align:left}}\
th{{background:#eee}}pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:85%}}\
figure{{margin:1em 0}}figcaption{{font-style:italic}}</style></head><body>\n<h1>{t}</h1>\n",
        t = esc(title)
    );
    for b in blocks {
        match b {
            Block::H2(t) => s.push_str(&format!("<h2>{}</h2>\n", esc(t))),
            Block::P(t) => s.push_str(&format!("<p>{}</p>\n", inline(t))),
            Block::Table(h, rows) => {
                s.push_str("<table><tr>");
                for c in h {
                    s.push_str(&format!("<th>{}</th>", inline(c)));
                }
                s.push_str("</tr>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        s.push_str(&format!("<td>{}</td>", inline(c)));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</table>\n");
            }
            Block::Img(f, c) => {
                // The SVG itself, inline: report.html is one self-contained file.
                let svg = std::fs::read_to_string(report.join(f)).unwrap_or_default();
                let svg = match svg.find("<svg") {
                    Some(i) => &svg[i..],
                    None => "",
                };
                s.push_str(&format!(
                    "<figure>{svg}<figcaption>{}</figcaption></figure>\n",
                    esc(c)
                ));
            }
            Block::Code(t) => s.push_str(&format!("<pre>{}</pre>\n", esc(t))),
        }
    }
    s.push_str("</body></html>\n");
    s
}

/// Write DIR/report/report.md, report.html and the plots; returns the markdown's path.
/// `threads`: the worker threads the stages computed with (for the setup line).
pub fn write(dir: &Path, cfg: &StudyConfig, stages: &[Stage], threads: usize) -> Result<PathBuf> {
    let report = dir.join("report");
    std::fs::create_dir_all(&report)
        .with_context(|| format!("{}: cannot create", report.display()))?;
    let title = "Entropy-gradient inversion at small scale: an egi study";
    let b = blocks(dir, cfg, stages, &report, threads);
    let md = report.join("report.md");
    write_atomic(&md, to_markdown(title, &b).as_bytes())?;
    write_atomic(
        &report.join("report.html"),
        to_html(title, &b, &report).as_bytes(),
    )?;
    let json = to_json(title, &b, dir, cfg, stages);
    write_atomic(
        &report.join("report.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(md)
}

/// The report as data: its sections (paragraphs, tables as columns + rows of the printed cells,
/// figures), the verdicts as records, the stages with their commands and times, the settings,
/// and `sources`: every JSON output the report was computed from, unrounded, by its path in the
/// study folder (`pd.DataFrame(t["rows"], columns=t["columns"])` reads a table).
fn to_json(
    title: &str,
    blocks: &[Block],
    dir: &Path,
    cfg: &StudyConfig,
    stages: &[Stage],
) -> Value {
    let mut sections: Vec<Value> =
        vec![json!({"heading": "Setup", "paragraphs": [], "tables": [], "figures": []})];
    let mut verdicts = vec![];
    for bl in blocks {
        let cur = sections.last_mut().expect("a section");
        match bl {
            Block::H2(h) => {
                sections.push(json!({"heading": h, "paragraphs": [], "tables": [], "figures": []}))
            }
            Block::P(t) => cur["paragraphs"]
                .as_array_mut()
                .expect("array")
                .push(json!(t)),
            Block::Table(cols, rows) => {
                if cur["heading"]
                    .as_str()
                    .is_some_and(|h| h.ends_with("Verdicts"))
                {
                    verdicts.extend(rows.iter().map(|r| {
                        Value::Object(
                            cols.iter()
                                .cloned()
                                .zip(r.iter().map(|c| json!(c)))
                                .collect(),
                        )
                    }));
                }
                cur["tables"]
                    .as_array_mut()
                    .expect("array")
                    .push(json!({"columns": cols, "rows": rows}));
            }
            Block::Img(file, caption) => cur["figures"]
                .as_array_mut()
                .expect("array")
                .push(json!({"file": file, "caption": caption})),
            Block::Code(_) => {}
        }
    }
    let secs = stage_seconds(dir);
    let stages: Vec<Value> = stages
        .iter()
        .map(|st| {
            json!({
                "name": st.name,
                "command": command_line(st),
                "seconds": secs.iter().find(|(n, _)| *n == st.name).map(|(_, s)| *s),
            })
        })
        .collect();
    json!({
        "title": title,
        "settings": cfg,
        "sections": sections,
        "verdicts": verdicts,
        "stages": stages,
        "sources": sources(dir),
    })
}

/// The stages' JSON outputs the report reads: fingerprint summaries and comparisons, evaluation
/// summaries and comparisons, and the SFT and RL metrics logs (JSONL, as arrays).
fn sources(dir: &Path) -> Value {
    let mut out = serde_json::Map::new();
    let mut add = |rel: String| {
        let path = dir.join(&rel);
        let v = if rel.ends_with(".jsonl") {
            let rows = read_jsonl(&path);
            (!rows.is_empty()).then_some(Value::Array(rows))
        } else {
            read_json(&path)
        };
        if let Some(v) = v {
            out.insert(rel, v);
        }
    };
    for top in ["fp", "eval"] {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(top))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            if n.ends_with(".json") {
                add(format!("{top}/{n}"));
            } else {
                for f in ["summary.json", "compare.json"] {
                    add(format!("{top}/{n}/{f}"));
                }
            }
        }
    }
    add("sft/metrics.jsonl".into());
    let mut runs: Vec<String> = std::fs::read_dir(dir.join("rl"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    runs.sort();
    for m in runs {
        add(format!("rl/{m}/metrics.jsonl"));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: &[(&str, f64)]) -> BTreeMap<String, f64> {
        v.iter().map(|(k, x)| (k.to_string(), *x)).collect()
    }

    /// Seeds are averaged item by item, on the items every run and the baseline share.
    #[test]
    fn pooled_averages_the_seeds_per_item() {
        let base = map(&[("a", 0.0), ("b", 1.0), ("c", 0.0), ("d", 1.0)]);
        let r1 = map(&[("a", 1.0), ("b", 1.0), ("c", 0.0), ("d", 0.0)]);
        let r2 = map(&[("a", 0.0), ("b", 0.0), ("c", 1.0)]);
        let t = pooled(&base, &[r1, r2]).unwrap();
        assert_eq!(t["pairs"], 3, "d is missing from the second run");
        // Averaged: a 0.5 - 0, b 0.5 - 1, c 0.5 - 0.
        let d = t["mean_difference"].as_f64().unwrap();
        assert!((d - 0.5 / 3.0).abs() < 1e-12, "{d}");
        let per: Vec<f64> = t["per_run_mean_difference"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(
            (per[0] - 1.0 / 3.0).abs() < 1e-12 && per[1].abs() < 1e-12,
            "{per:?}"
        );
        assert_eq!(t["differing"], 3);
        assert!(
            t["uninformative"].is_string(),
            "3 pairs cannot reach p < 0.05"
        );
        // Exact sign-flip p over 3 pairs of +-0.5: every sign pattern has |sum| >= 0.5.
        assert_eq!(t["p_value"], 1.0);
        assert!(pooled(&base, &[]).is_none());
        assert!(pooled(&base, &[BTreeMap::new()]).is_none());
    }

    #[test]
    fn seeds_average_per_item_on_the_items_all_have() {
        let a = map(&[("x", 1.0), ("y", 0.0), ("z", 1.0)]);
        let b = map(&[("x", 0.0), ("y", 0.0)]);
        assert_eq!(
            seed_average(&[a.clone(), b.clone()]),
            map(&[("x", 0.5), ("y", 0.0)])
        );
        assert!(seed_average(&[a, BTreeMap::new()]).is_empty());
        assert!(seed_average(&[]).is_empty());
    }
}
