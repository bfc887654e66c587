//! The study's report: DIR/report/report.md and report.html (plots embedded), report.json (the
//! same tables and verdicts as data, with the JSON they were computed from), plus the plots as
//! SVG files. Every number is read from the JSON the study's commands wrote (summary.json,
//! compare.json, metrics.jsonl, ...); a missing output shows as "n/a" with the stage to run.
//! A test edits one of those files and finds the edited value in the report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::config::StudyConfig;
use crate::stage_seconds;
use crate::stages::{command_line, eval_sets, Stage, RL_MODELS};
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

/// Verdict on "the paired difference is below 0" from a `fingerprint compare` test.
fn paired_verdict(t: &Option<Value>) -> String {
    let Some(t) = t else {
        return NO_CI.into();
    };
    if let Some(why) = t["uninformative"].as_str() {
        return format!("uninformative ({why})");
    }
    match (t["mean_difference"].as_f64(), t["p_value"].as_f64()) {
        (Some(d), Some(p)) if p < ALPHA && d < 0.0 => "supported".into(),
        (Some(d), Some(p)) if p < ALPHA && d > 0.0 => "not supported".into(),
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

    // Setup.
    b.push(Block::P(format!(
        "Model: `{}`. Everything below was computed by `egi study` and is regenerated by rerunning it; \
         the settings are in `study_config.json`, every command in the last section.",
        cfg.model
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

    // 1. The default model's fingerprint.
    b.push(Block::H2("1. Fingerprint of the default model".into()));
    b.push(Block::P(format!(
        "Its own greedy responses to {} held-out problems per set (up to {} new tokens). Token-level rho \
         (the level of the paper's figures): Spearman between each token's entropy and the nuclear norms of \
         the gradient of its logit for q/k/v/o of every layer, on the first {} responses (one gradient per \
         token). Step-level rho (lines are steps) alongside: on all responses with one gradient of each \
         step's mean logit (`--step-mode mean-logit`), and on the token-level texts as the mean of the step's \
         token influences (METHOD's definition, `mean`). Mean over responses with a defined rho (n), \
         bootstrap 95% CI.",
        cfg.fp_prompts, cfg.fp_max_new_tokens, cfg.fp_token_prompts
    )));
    let mut rows = vec![];
    let mut left_out = vec![];
    for (label, name) in [
        ("GSM8K test", "base-gsm8k"),
        ("arithmetic, 1-3 steps", "base-arith"),
    ] {
        let (s, t) = (fp(name), fp(&format!("{name}-token")));
        rows.push(vec![
            label.to_string(),
            rho_cell(&t, "rho_token"),
            rho_cell(&t, "rho_step"),
            rho_cell(&s, "rho_step"),
            s.as_ref()
                .and_then(|s| s["rho_step"]["frac_negative"].as_f64())
                .map(|x| format!("{x:.2}"))
                .unwrap_or("n/a".into()),
        ]);
        for (what, sum, key) in [
            ("token-level", &t, "rho_token"),
            ("step-level (mean-logit)", &s, "rho_step"),
        ] {
            let ex = excluded(sum, key);
            if !ex.is_empty() {
                left_out.push(format!("{label}, {what}: {}", ex.join("; ")));
            }
        }
    }
    b.push(Block::Table(
        vec![
            "texts".into(),
            "rho_token [95% CI] (n)".into(),
            "rho_step, mean mode, same texts".into(),
            "rho_step, mean-logit, all texts".into(),
            "fraction rho_step < 0".into(),
        ],
        rows,
    ));
    b.push(Block::P(if left_out.is_empty() {
        "Left out of the means: none (every response has a defined rho).".into()
    } else {
        format!("Left out of the means: {}.", left_out.join(". "))
    }));
    b.push(Block::P(
        "Paper (token-level rho): reasoning models -0.649; base models +0.036 (Llama) and -0.171 (Qwen); \
         safety-aligned +0.005 and +0.148. An instruct model of 135M parameters is none of these."
            .into(),
    ));

    // 2. SFT.
    b.push(Block::H2(
        "2. Supervised fine-tuning on GSM8K solutions".into(),
    ));
    b.push(Block::P(format!(
        "{} steps of {} GSM8K train solutions each (calculator annotations stripped, `#### N` turned into \
         a boxed final answer), lr {}, responses cut at {} tokens; the fingerprint of each checkpoint \
         with its own responses to the same {} GSM8K test problems.",
        cfg.sft_steps, cfg.sft_batch, cfg.sft_lr, cfg.sft_max_len, cfg.fp_prompts
    )));
    let sft_metrics = read_jsonl(&dir.join("sft/metrics.jsonl"));
    let loss_at = |step: usize| -> Option<f64> {
        sft_metrics
            .iter()
            .find(|m| m["step"].as_u64() == Some(step as u64))
            .and_then(|m| m["loss"].as_f64())
    };
    let cmp_sft = read_json(&dir.join("fp/cmp-sft/compare.json"));
    let mut rows = vec![];
    for step in cfg.sft_fp_steps() {
        let s = if step == 0 {
            fp("base-gsm8k")
        } else {
            fp(&format!("sft-step-{step}"))
        };
        let test = paired_test(&cmp_sft, &format!("sft-step-{step}"), "rho_step");
        rows.push(vec![
            step.to_string(),
            loss_at(step)
                .map(|l| format!("{l:.3}"))
                .unwrap_or(if step == 0 { "-".into() } else { "n/a".into() }),
            rho_cell(&s, "rho_step"),
            if step == 0 {
                "-".into()
            } else {
                paired_cell(&test)
            },
        ]);
    }
    b.push(Block::Table(
        vec![
            "SFT step".into(),
            "training loss (NLL per token)".into(),
            "rho_step, mean-logit [95% CI] (n)".into(),
            "paired difference vs step 0 [95% CI] (permutation p, prompts)".into(),
        ],
        rows,
    ));
    let mut left_out = vec![];
    for step in cfg.sft_fp_steps() {
        let s = if step == 0 {
            fp("base-gsm8k")
        } else {
            fp(&format!("sft-step-{step}"))
        };
        let ex = excluded(&s, "rho_step");
        if !ex.is_empty() {
            left_out.push(format!("step {step}: {}", ex.join("; ")));
        }
    }
    b.push(Block::P(if left_out.is_empty() {
        "Left out of the means: none.".into()
    } else {
        format!("Left out of the means: {}.", left_out.join(". "))
    }));
    let last = format!("sft-step-{}", cfg.sft_steps);
    let sft_step_test = paired_test(&cmp_sft, &last, "rho_step");
    let cmp_sft_token = read_json(&dir.join("fp/cmp-sft-token/compare.json"));
    let sft_token_test = paired_test(&cmp_sft_token, &format!("{last}-token"), "rho_token");
    let (t0, tn) = (fp("base-gsm8k-token"), fp(&format!("{last}-token")));
    b.push(Block::P(format!(
        "Token-level, on the first {} of those prompts: step 0 {}, step {} {}; paired difference {}. \
         Pairs are the same prompt answered by both checkpoints (each writes its own answer), tested \
         with a sign-flip permutation test of the per-prompt differences.",
        cfg.fp_token_prompts,
        rho_cell(&t0, "rho_token"),
        cfg.sft_steps,
        rho_cell(&tn, "rho_token"),
        paired_cell(&sft_token_test),
    )));
    copy_plot(
        &dir.join("fp/cmp-sft/compare.svg"),
        report,
        "sft-rho.svg",
        &mut b,
        "Mean rho with 95% CIs at each SFT checkpoint (left to right: step 0 to the last)",
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

    // 3. RL.
    b.push(Block::H2("3. GRPO and CorR-PO".into()));
    b.push(Block::P(format!(
        "Both from the default model, seed {}, {} steps of {} prompts x {} responses x {} new tokens, lr {}, \
         on {} generated arithmetic problems of one to three steps; CorR-PO adds lambda = {} times \
         -(1 + rho_step) to the reward. Greedy accuracy on held-out problems (Wilson 95% CI), {} per \
         arithmetic set and {} from GSM8K test, {} new tokens.",
        cfg.seed,
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
    let mut rows = vec![];
    for (label, set) in eval_sets() {
        let mut row = vec![label];
        for (_, m) in RL_MODELS {
            let s = read_json(&dir.join("eval").join(format!("{m}-{set}/summary.json")));
            let e = s.as_ref().map(|s| s["metrics"]["pass@1"].clone());
            row.push(acc_ci(
                e.as_ref().and_then(|e| e["mean"].as_f64()),
                e.as_ref().and_then(|e| ci(&e["wilson95"])),
            ));
        }
        rows.push(row);
    }
    let mut head = vec!["held-out set".to_string()];
    head.extend(RL_MODELS.iter().map(|(l, _)| l.to_string()));
    b.push(Block::Table(head, rows));
    let mut rows = vec![];
    let mut corr_vs_grpo = vec![];
    for (a, bm) in [("base", "grpo"), ("base", "corr-po"), ("grpo", "corr-po")] {
        for (label, set) in eval_sets() {
            let c = read_json(
                &dir.join("eval")
                    .join(format!("compare-{bm}-vs-{a}-{set}.json")),
            );
            let d = c.as_ref().and_then(|c| c["mean_difference"].as_f64());
            let dci = c.as_ref().and_then(|c| ci(&c["difference_ci95"]));
            if a == "grpo" {
                let no_power = c.as_ref().is_some_and(|c| c["uninformative"].is_string());
                corr_vs_grpo.push((label.clone(), dci, no_power));
            }
            rows.push(vec![
                format!("{bm} - {a}"),
                label,
                with_ci(d, dci),
                c.as_ref()
                    .and_then(|c| c["p_value"].as_f64())
                    .map(|p| format!("{p:.3}"))
                    .unwrap_or("n/a".into()),
                c.as_ref()
                    .and_then(|c| c["differing_problems"].as_u64())
                    .map(|d| {
                        let u = c.as_ref().is_some_and(|c| c["uninformative"].is_string());
                        format!("{d}{}", if u { " (uninformative)" } else { "" })
                    })
                    .unwrap_or("n/a".into()),
            ]);
        }
    }
    b.push(Block::Table(
        vec![
            "difference".into(),
            "set".into(),
            "accuracy difference [bootstrap 95% CI]".into(),
            "paired permutation p".into(),
            "problems that differ".into(),
        ],
        rows,
    ));
    // Training logs.
    let mut rows = vec![];
    for (label, m) in &RL_MODELS[1..] {
        let ms = read_jsonl(&dir.join("rl").join(m).join("metrics.jsonl"));
        let avg = |k: &str| -> Option<f64> {
            let v: Vec<f64> = ms.iter().filter_map(|x| x[k].as_f64()).collect();
            egi_report::stats::mean(&v)
        };
        let med = |k: &str| -> Option<f64> {
            let v: Vec<f64> = ms.iter().filter_map(|x| x[k].as_f64()).collect();
            egi_report::stats::median(&v)
        };
        rows.push(vec![
            label.to_string(),
            ms.len().to_string(),
            avg("accuracy")
                .map(|x| format!("{x:.3}"))
                .unwrap_or("n/a".into()),
            f3(avg("rho_mean")),
            med("seconds_step")
                .map(|x| format!("{x:.1}"))
                .unwrap_or("n/a".into()),
        ]);
    }
    b.push(Block::Table(
        vec![
            "run".into(),
            "steps logged".into(),
            "mean rollout accuracy".into(),
            "mean rho_step of rollouts".into(),
            "median s per step".into(),
        ],
        rows,
    ));
    copy_plot(
        &dir.join("plots/rl/curves.svg"),
        report,
        "rl-curves.svg",
        &mut b,
        "GRPO vs CorR-PO training curves",
    );
    // Fingerprint after RL, paired on the default model's texts.
    let cmp = read_json(&dir.join("fp/cmp-rl/compare.json"));
    let cmp_token = read_json(&dir.join("fp/cmp-rl-token/compare.json"));
    let mut rows = vec![];
    let mut rl_rho = vec![];
    for (label, m) in RL_MODELS {
        let (s, t) = (fp(&format!("{m}-arith")), fp(&format!("{m}-arith-token")));
        let step_test = paired_test(&cmp, &format!("{m}-arith"), "rho_step");
        let token_test = paired_test(&cmp_token, &format!("{m}-arith-token"), "rho_token");
        let base = m == "base";
        rows.push(vec![
            label.to_string(),
            rho_cell(&t, "rho_token"),
            if base {
                "-".into()
            } else {
                paired_cell(&token_test)
            },
            rho_cell(&s, "rho_step"),
            if base {
                "-".into()
            } else {
                paired_cell(&step_test)
            },
        ]);
        if !base {
            rl_rho.push((label.to_string(), token_test, step_test));
        }
    }
    b.push(Block::P(format!(
        "The fingerprint after RL, measured on the same texts (the default model's responses to the \
         held-out arithmetic problems), so the differences are paired by text: token-level on the first {}, \
         step-level (mean-logit) on all.",
        cfg.fp_token_prompts
    )));
    b.push(Block::Table(
        vec![
            "model".into(),
            "rho_token [95% CI] (n)".into(),
            "paired difference vs default model (p, texts)".into(),
            "rho_step [95% CI] (n)".into(),
            "paired difference vs default model (p, texts)".into(),
        ],
        rows,
    ));
    copy_plot(
        &dir.join("fp/cmp-rl/compare.svg"),
        report,
        "rl-rho.svg",
        &mut b,
        "Mean rho with 95% CIs: default model, after GRPO, after CorR-PO",
    );
    b.push(Block::P(
        "Paper: GRPO from the base model drives rho negative (-0.36 within 100 steps); CorR-PO improves \
         accuracy over GRPO on AIME24 / MATH-500 / GSM8K with 1.5B-8B models."
            .into(),
    ));

    // 4. Verdicts.
    b.push(Block::H2("4. Verdicts".into()));
    let (gs, gt) = (fp("base-gsm8k"), fp("base-gsm8k-token"));
    let (as_, at) = (fp("base-arith"), fp("base-arith-token"));
    let sign = |s: &Option<Value>, key: &str| {
        let (_, c) = rho(s, key);
        verdict(c, defined(s, key), -1.0)
    };
    let corr_verdict = {
        let usable: Vec<_> = corr_vs_grpo.iter().filter(|(_, _, u)| !u).collect();
        let up = usable
            .iter()
            .filter(|(_, c, _)| c.is_some_and(|(l, _)| l > 0.0))
            .count();
        let down = usable
            .iter()
            .filter(|(_, c, _)| c.is_some_and(|(_, h)| h < 0.0))
            .count();
        if corr_vs_grpo.iter().all(|(_, c, _)| c.is_none()) {
            NO_CI.to_string()
        } else if usable.is_empty() {
            "uninformative (on every held-out set too few problems differ between the two models)"
                .into()
        } else if up > 0 && down == 0 {
            "supported".into()
        } else if down > 0 && up == 0 {
            "not supported".into()
        } else {
            "inconclusive at this scale".into()
        }
    };
    let mut rows = vec![
        vec![
            "A reasoning-capable model shows negative rho".into(),
            "-0.649 (token-level, reasoning models)".into(),
            format!(
                "token: GSM8K {}, arithmetic {}; step: GSM8K {}, arithmetic {}",
                rho_cell(&gt, "rho_token"),
                rho_cell(&at, "rho_token"),
                rho_cell(&gs, "rho_step"),
                rho_cell(&as_, "rho_step")
            ),
            format!(
                "token: GSM8K {}, arithmetic {}; step: GSM8K {}, arithmetic {}",
                sign(&gt, "rho_token"),
                sign(&at, "rho_token"),
                sign(&gs, "rho_step"),
                sign(&as_, "rho_step")
            ),
        ],
        vec![
            "SFT on reasoning traces lowers rho".into(),
            "token-level +0.036 -> -0.468 in 200 steps (Llama-3.1-8B)".into(),
            format!(
                "step {} vs step 0, paired by prompt: token {}; step {}",
                cfg.sft_steps,
                paired_cell(&sft_token_test),
                paired_cell(&sft_step_test)
            ),
            format!(
                "token: {}; step: {}",
                paired_verdict(&sft_token_test),
                paired_verdict(&sft_step_test)
            ),
        ],
    ];
    for (label, token, step) in &rl_rho {
        rows.push(vec![
            format!("{label} lowers rho"),
            "-0.36 within 100 GRPO steps".into(),
            format!(
                "paired by text: token {}; step {}",
                paired_cell(token),
                paired_cell(step)
            ),
            format!(
                "token: {}; step: {}",
                paired_verdict(token),
                paired_verdict(step)
            ),
        ]);
    }
    rows.push(vec![
        "CorR-PO is more accurate than GRPO".into(),
        "higher Pass@1 on AIME24 / MATH-500 / GSM8K".into(),
        corr_vs_grpo
            .iter()
            .map(|(l, c, u)| {
                format!(
                    "{l}: {}{}",
                    c.map(|(a, b)| format!("[{a:+.3}, {b:+.3}]"))
                        .unwrap_or("n/a".into()),
                    if *u { " (uninformative)" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        corr_verdict,
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
         change of rho (SFT, RL) is tested on paired differences (SFT: the same prompt at both checkpoints; RL: \
         the same text scored by both models) with an exact or sampled sign-flip permutation test: supported \
         when the mean difference is negative with p < 0.05, not supported when positive with p < 0.05, \
         inconclusive otherwise. CorR-PO beats GRPO when the CI of the paired accuracy difference lies above 0 \
         on some held-out set and below 0 on none. Uninformative, unlike inconclusive, means the comparison \
         could not have found an effect: fewer than 6 responses with a defined rho or fewer than 6 nonzero \
         paired differences (with n nonzero values the exact test's smallest p is 2^(1-n), above 0.05 for \
         n <= 5), or all differences 0 (both accuracies at the floor). Token-level verdicts are the ones to set \
         beside the paper's token-level figures; step-level ones are shown alongside."
            .into(),
    ));
    b.push(Block::P(
        "Caveats: a 135M-parameter instruct model is far from the paper's 1.5B-8B reasoning models; few prompts \
         per measurement give wide CIs; RL and SFT budgets are small fractions of the paper's; the default \
         model answers few GSM8K problems, so GSM8K accuracies sit near 0."
            .into(),
    ));

    // 5. Commands.
    b.push(Block::H2("5. Commands".into()));
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
    for (_, m) in &RL_MODELS[1..] {
        add(format!("rl/{m}/metrics.jsonl"));
    }
    Value::Object(out)
}
