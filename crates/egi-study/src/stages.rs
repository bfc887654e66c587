//! The study as a fixed list of egi commands: data (exact worked solutions for SFT, problems
//! for RL, held-out sets), SFT into a reasoning model with the fingerprint and accuracy at
//! checkpoints, GRPO and CorR-PO from the SFT model over several seeds, evaluations,
//! fingerprints after RL, comparisons, plots. Paths are under the study's folder.

use std::path::Path;

use crate::config::StudyConfig;

/// The RL algorithms compared, in report order: (label, `--algo` name).
pub const ALGOS: [(&str, &str); 2] = [("GRPO", "grpo"), ("CorR-PO", "corr-po")];

/// Largest number of steps of the generated arithmetic problems.
pub const MAX_STEPS: usize = 4;

/// One RL run: algorithm (`--algo` name), seed, and its name (`grpo-s1`: rl/NAME, eval/NAME-*).
pub struct RlRun {
    pub algo: &'static str,
    pub seed: u64,
    pub name: String,
}

/// Every RL run of the study: each algorithm at each seed.
pub fn rl_runs(c: &StudyConfig) -> Vec<RlRun> {
    ALGOS
        .iter()
        .flat_map(|(_, algo)| {
            c.rl_seed_list().into_iter().map(move |seed| RlRun {
                algo,
                seed,
                name: format!("{algo}-s{seed}"),
            })
        })
        .collect()
}

/// Held-out evaluation sets: (label, output name).
pub fn eval_sets() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = (1..=MAX_STEPS)
        .map(|k| {
            (
                format!("arithmetic, {k} step{}", if k > 1 { "s" } else { "" }),
                format!("arith{k}"),
            )
        })
        .collect();
    v.push(("GSM8K test subset".into(), "gsm8k".into()));
    v
}

/// One stage: a name (its marker and log) and the egi arguments.
pub struct Stage {
    pub name: String,
    pub args: Vec<String>,
}

fn ckpt(run: &Path, step: usize) -> String {
    run.join("checkpoints")
        .join(format!("step-{step:06}"))
        .display()
        .to_string()
}

/// The model at SFT step `step` (step 0: the study's model).
pub fn sft_model(c: &StudyConfig, dir: &Path, step: usize) -> String {
    if step == 0 {
        c.model.clone()
    } else {
        ckpt(&dir.join("sft"), step)
    }
}

/// The study's commands, in order. Paths are under `dir`.
pub fn stages(c: &StudyConfig, dir: &Path) -> Vec<Stage> {
    let p = |s: &str| dir.join(s).display().to_string();
    let gsm_test = match &c.data_dir {
        None => "gsm8k".to_string(),
        Some(d) => Path::new(d).join("gsm8k/test.jsonl").display().to_string(),
    };
    let mut st: Vec<Stage> = vec![];
    let mut add = |name: &str, args: Vec<String>| {
        st.push(Stage {
            name: name.into(),
            args,
        })
    };
    let s = |x: &str| x.to_string();
    let n = |x: usize| x.to_string();
    let f = |x: f64| format!("{x}");
    let last = c.sft_steps;
    let sft_final = sft_model(c, dir, last);

    // 1. Data, each set from its own seed: SFT traces, RL problems, held-out problems by step
    // count, the 2-3 step set of the SFT checkpoints, and the fingerprint's problems (with
    // their exact solutions: the fixed texts every model scores).
    let data = |n_: usize, seed: u64, steps: &str, out: &str, solutions: bool| {
        let mut v = vec![
            s("data"),
            s("arith"),
            s("--n"),
            n(n_),
            s("--seed"),
            seed.to_string(),
            s("--steps"),
            s(steps),
            s("--out"),
            p(out),
        ];
        if solutions {
            v.push(s("--solutions"));
        }
        v
    };
    let all_steps = format!("1..{MAX_STEPS}");
    add(
        "data-sft",
        data(
            c.sft_traces,
            c.seed + 3000,
            &all_steps,
            "data/sft-traces.jsonl",
            true,
        ),
    );
    add(
        "data-train",
        data(
            c.rl_train_problems,
            c.seed,
            &all_steps,
            "data/arith-train.jsonl",
            false,
        ),
    );
    for k in 1..=MAX_STEPS {
        add(
            &format!("data-heldout-{k}"),
            data(
                c.eval_arith,
                c.seed + 1000 + k as u64,
                &format!("{k}..{k}"),
                &format!("data/arith-heldout-{k}.jsonl"),
                false,
            ),
        );
    }
    add(
        "data-heldout-sft",
        data(
            c.eval_arith,
            c.seed + 1500,
            "2..3",
            "data/arith-heldout-sft.jsonl",
            false,
        ),
    );
    add(
        "data-heldout-fp",
        data(
            c.fp_prompts,
            c.seed + 2000,
            &all_steps,
            "data/arith-heldout-fp.jsonl",
            true,
        ),
    );
    let fp_data = p("data/arith-heldout-fp.jsonl");

    // Fingerprint commands: (a) the model's own greedy answers to the fingerprint's problems,
    // (b) the fixed texts (the problems' exact solutions) scored by the model; step level
    // (mean-logit), or token level on the first fp_token_prompts texts of a measurement.
    let fp_own = |model: &str, out: &str| -> Vec<String> {
        vec![
            s("fingerprint"),
            s("--model"),
            s(model),
            s("--generate"),
            s("--data"),
            fp_data.clone(),
            s("--template"),
            s("boxed"),
            s("--n-prompts"),
            n(c.fp_prompts),
            s("--max-new-tokens"),
            n(c.fp_max_new_tokens),
            s("--step-mode"),
            s("mean-logit"),
            s("--out"),
            p(&format!("fp/{out}")),
        ]
    };
    let fp_fixed = |model: &str, out: &str| -> Vec<String> {
        vec![
            s("fingerprint"),
            s("--model"),
            s(model),
            s("--input"),
            fp_data.clone(),
            s("--template"),
            s("boxed"),
            s("--step-mode"),
            s("mean-logit"),
            s("--out"),
            p(&format!("fp/{out}")),
        ]
    };
    // Token level on the texts of a step measurement (its responses.jsonl holds the prompts
    // as rendered); METHOD's `mean` step rho comes with it.
    let fp_token = |model: &str, texts: &str, out: &str| -> Vec<String> {
        vec![
            s("fingerprint"),
            s("--model"),
            s(model),
            s("--input"),
            p(&format!("fp/{texts}/responses.jsonl")),
            s("--limit"),
            n(c.fp_token_prompts),
            s("--step-mode"),
            s("mean"),
            s("--out"),
            p(&format!("fp/{out}")),
        ]
    };
    let compare = |runs: Vec<String>, out: &str, pair_by: &str| -> Vec<String> {
        let mut v = vec![s("fingerprint"), s("compare")];
        v.extend(runs.iter().map(|r| p(&format!("fp/{r}"))));
        v.extend([
            s("--out"),
            p(&format!("fp/{out}")),
            s("--pair-by"),
            s(pair_by),
        ]);
        v
    };
    let eval = |model: &str, bench: String, limit: usize, out: &str| -> Vec<String> {
        vec![
            s("eval"),
            s("--model"),
            s(model),
            s("--bench"),
            bench,
            s("--limit"),
            n(limit),
            s("--greedy"),
            s("--max-new-tokens"),
            n(c.eval_max_new_tokens),
            s("--out"),
            p(&format!("eval/{out}")),
        ]
    };

    // 2. SFT on the traces; at step 0 and every sft_fp_every steps: greedy held-out accuracy
    // and the fingerprint on (a) and (b).
    let sft = dir.join("sft");
    add(
        "sft",
        vec![
            s("sft"),
            s("--model"),
            c.model.clone(),
            s("--data"),
            p("data/sft-traces.jsonl"),
            s("--out"),
            sft.display().to_string(),
            s("--resume"),
            s("--max-steps"),
            n(c.sft_steps),
            s("--batch-size"),
            n(c.sft_batch),
            s("--max-len"),
            n(c.sft_max_len),
            s("--lr"),
            f(c.sft_lr),
            s("--save-every"),
            n(c.sft_fp_every),
            s("--keep-last"),
            n(c.sft_steps / c.sft_fp_every + 2),
            s("--seed"),
            n(c.seed as usize),
        ],
    );
    let steps = c.sft_fp_steps();
    for &step in &steps {
        let model = sft_model(c, dir, step);
        add(
            &format!("eval-sft-{step}"),
            eval(
                &model,
                p("data/arith-heldout-sft.jsonl"),
                c.eval_arith,
                &format!("sft-{step}-arith23"),
            ),
        );
        add(
            &format!("fp-sft-{step}"),
            fp_own(&model, &format!("sft-{step}")),
        );
        add(
            &format!("fp-sft-{step}-fixed"),
            fp_fixed(&model, &format!("sft-{step}-fixed")),
        );
    }
    let names = |suffix: &str| -> Vec<String> {
        steps.iter().map(|k| format!("sft-{k}{suffix}")).collect()
    };
    // (a) pairs the same prompt answered by each checkpoint; (b) the same text.
    add("fp-compare-sft", compare(names(""), "cmp-sft", "prompt"));
    add(
        "fp-compare-sft-fixed",
        compare(names("-fixed"), "cmp-sft-fixed", "text"),
    );
    for step in [0, last] {
        let model = sft_model(c, dir, step);
        for kind in ["", "-fixed"] {
            add(
                &format!("fp-sft-{step}{kind}-token"),
                fp_token(
                    &model,
                    &format!("sft-{step}{kind}"),
                    &format!("sft-{step}{kind}-token"),
                ),
            );
        }
    }
    for (kind, pair_by) in [("", "prompt"), ("-fixed", "text")] {
        add(
            &format!("fp-compare-sft{kind}-token"),
            compare(
                vec![
                    format!("sft-0{kind}-token"),
                    format!("sft-{last}{kind}-token"),
                ],
                &format!("cmp-sft{kind}-token"),
                pair_by,
            ),
        );
    }
    add(
        "plot-sft",
        vec![
            s("plot"),
            sft.display().to_string(),
            s("--out"),
            p("plots/sft"),
            s("--title"),
            s("SFT on exact arithmetic solutions"),
        ],
    );

    // 3. GRPO and CorR-PO from the SFT model: same data, budget and seeds.
    let runs = rl_runs(c);
    for r in &runs {
        add(
            &format!("train-{}", r.name),
            vec![
                s("train"),
                s("--algo"),
                s(r.algo),
                s("--model"),
                sft_final.clone(),
                s("--data"),
                p("data/arith-train.jsonl"),
                s("--out"),
                p(&format!("rl/{}", r.name)),
                s("--resume"),
                s("--max-steps"),
                n(c.rl_steps),
                s("--batch-prompts"),
                n(c.rl_batch_prompts),
                s("--group-size"),
                n(c.rl_group_size),
                s("--max-new-tokens"),
                n(c.rl_max_new_tokens),
                s("--lr"),
                f(c.rl_lr),
                s("--lambda"),
                f(c.rl_lambda),
                s("--save-every"),
                n(c.rl_steps.div_ceil(2)),
                s("--seed"),
                r.seed.to_string(),
                s("--measure-rho"),
                (r.algo == "corr-po" || c.rl_measure_rho && r.seed == c.seed).to_string(),
            ],
        );
    }
    let mut plot = vec![s("plot")];
    plot.extend(runs.iter().map(|r| p(&format!("rl/{}", r.name))));
    plot.extend([
        s("--out"),
        p("plots/rl"),
        s("--title"),
        s("GRPO vs CorR-PO from the SFT model"),
    ]);
    add("plot-rl", plot);

    // 4. Held-out accuracy of the SFT model and of every RL run, by set.
    let mut models = vec![("sft".to_string(), sft_final.clone())];
    models.extend(runs.iter().map(|r| {
        (
            r.name.clone(),
            ckpt(&dir.join("rl").join(&r.name), c.rl_steps),
        )
    }));
    for (m, model) in &models {
        for (_, set) in eval_sets() {
            let (bench, limit) = if set == "gsm8k" {
                (gsm_test.clone(), c.eval_gsm8k)
            } else {
                (
                    p(&format!("data/arith-heldout-{}.jsonl", &set[5..])),
                    c.eval_arith,
                )
            };
            add(
                &format!("eval-{m}-{set}"),
                eval(model, bench, limit, &format!("{m}-{set}")),
            );
        }
    }

    // 5. The fingerprint after RL on the fixed texts, paired by text with the SFT model's;
    // token level for the first seed.
    for (m, model) in &models[1..] {
        add(
            &format!("fp-{m}-fixed"),
            fp_fixed(model, &format!("{m}-fixed")),
        );
    }
    let mut cmp = vec![format!("sft-{last}-fixed")];
    cmp.extend(runs.iter().map(|r| format!("{}-fixed", r.name)));
    add("fp-compare-rl", compare(cmp, "cmp-rl", "text"));
    let first = c.seed;
    let mut cmp = vec![format!("sft-{last}-fixed-token")];
    for (_, algo) in ALGOS {
        let m = format!("{algo}-s{first}");
        let model = ckpt(&dir.join("rl").join(&m), c.rl_steps);
        add(
            &format!("fp-{m}-fixed-token"),
            fp_token(
                &model,
                &format!("sft-{last}-fixed"),
                &format!("{m}-fixed-token"),
            ),
        );
        cmp.push(format!("{m}-fixed-token"));
    }
    add("fp-compare-rl-token", compare(cmp, "cmp-rl-token", "text"));
    st
}

fn shell_quote(a: &str) -> String {
    if a.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

pub fn command_line(st: &Stage) -> String {
    std::iter::once("egi".to_string())
        .chain(st.args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}
