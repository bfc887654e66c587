//! The study as a fixed list of egi commands: data, fingerprints, SFT, GRPO and CorR-PO,
//! evaluations, comparisons, plots. Paths are under the study's folder.

use std::path::Path;

use crate::config::StudyConfig;

/// The models compared after RL, in report order: (label, output name).
pub const RL_MODELS: [(&str, &str); 3] = [
    ("default model", "base"),
    ("GRPO", "grpo"),
    ("CorR-PO", "corr-po"),
];

/// Held-out evaluation sets: (label, output name).
pub fn eval_sets() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = (1..=3)
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

/// The study's commands, in order. Paths are under `dir`.
pub fn stages(c: &StudyConfig, dir: &Path) -> Vec<Stage> {
    let p = |s: &str| dir.join(s).display().to_string();
    let (gsm_test, gsm_train) = match &c.data_dir {
        None => ("gsm8k".to_string(), "gsm8k-train".to_string()),
        Some(d) => (
            Path::new(d).join("gsm8k/test.jsonl").display().to_string(),
            Path::new(d).join("gsm8k/train.jsonl").display().to_string(),
        ),
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
    // 1. Data: RL training problems, held-out problems by step count, a mixed held-out set.
    add(
        "data-train",
        vec![
            s("data"),
            s("arith"),
            s("--n"),
            n(c.rl_train_problems),
            s("--seed"),
            n(c.seed as usize),
            s("--steps"),
            s("1..3"),
            s("--out"),
            p("data/arith-train.jsonl"),
        ],
    );
    for k in 1..=3 {
        add(
            &format!("data-heldout-{k}"),
            vec![
                s("data"),
                s("arith"),
                s("--n"),
                n(c.eval_arith),
                s("--seed"),
                n(c.seed as usize + 1000 + k),
                s("--steps"),
                format!("{k}..{k}"),
                s("--out"),
                p(&format!("data/arith-heldout-{k}.jsonl")),
            ],
        );
    }
    add(
        "data-heldout-mixed",
        vec![
            s("data"),
            s("arith"),
            s("--n"),
            n(c.fp_prompts),
            s("--seed"),
            n(c.seed as usize + 2000),
            s("--steps"),
            s("1..3"),
            s("--out"),
            p("data/arith-heldout-mixed.jsonl"),
        ],
    );
    // 2. Fingerprint of the model with its own responses.
    let fp = |model: &str, data: &str, out: String| -> Vec<String> {
        vec![
            s("fingerprint"),
            s("--model"),
            s(model),
            s("--generate"),
            s("--data"),
            s(data),
            s("--n-prompts"),
            n(c.fp_prompts),
            s("--max-new-tokens"),
            n(c.fp_max_new_tokens),
            s("--step-mode"),
            s("mean-logit"),
            s("--out"),
            out,
        ]
    };
    add("fp-base-gsm8k", fp(&c.model, &gsm_test, p("fp/base-gsm8k")));
    add(
        "fp-base-arith",
        fp(
            &c.model,
            &p("data/arith-heldout-mixed.jsonl"),
            p("fp/base-arith"),
        ),
    );
    // 3. SFT on GSM8K solutions, the fingerprint at checkpoints.
    let sft = dir.join("sft");
    add(
        "sft",
        vec![
            s("sft"),
            s("--model"),
            c.model.clone(),
            s("--data"),
            gsm_train,
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
    let mut sft_fps = vec![p("fp/base-gsm8k")];
    for step in c.sft_fp_steps().into_iter().filter(|&s| s > 0) {
        let out = p(&format!("fp/sft-step-{step}"));
        add(
            &format!("fp-sft-{step}"),
            fp(&ckpt(&sft, step), &gsm_test, out.clone()),
        );
        sft_fps.push(out);
    }
    // Each checkpoint answers the same prompts itself: paired by prompt.
    let mut cmp = vec![s("fingerprint"), s("compare")];
    cmp.extend(sft_fps);
    cmp.extend([s("--out"), p("fp/cmp-sft"), s("--pair-by"), s("prompt")]);
    add("fp-compare-sft", cmp);
    add(
        "plot-sft",
        vec![
            s("plot"),
            sft.display().to_string(),
            s("--out"),
            p("plots/sft"),
            s("--title"),
            s("SFT on GSM8K solutions"),
        ],
    );
    // 4. GRPO and CorR-PO from the same model, seed, data and budget.
    for (_, algo) in &RL_MODELS[1..] {
        add(
            &format!("train-{algo}"),
            vec![
                s("train"),
                s("--algo"),
                s(algo),
                s("--model"),
                c.model.clone(),
                s("--data"),
                p("data/arith-train.jsonl"),
                s("--out"),
                p(&format!("rl/{algo}")),
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
                n(c.seed as usize),
            ],
        );
    }
    add(
        "plot-rl",
        vec![
            s("plot"),
            p("rl/grpo"),
            p("rl/corr-po"),
            s("--out"),
            p("plots/rl"),
            s("--title"),
            s("GRPO vs CorR-PO"),
        ],
    );
    // 5. Held-out evaluation of the three models, and paired comparisons.
    let model_of = |name: &str| -> String {
        match name {
            "base" => c.model.clone(),
            algo => ckpt(&dir.join("rl").join(algo), c.rl_steps),
        }
    };
    for (_, m) in RL_MODELS {
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
                vec![
                    s("eval"),
                    s("--model"),
                    model_of(m),
                    s("--bench"),
                    bench,
                    s("--limit"),
                    n(limit),
                    s("--greedy"),
                    s("--max-new-tokens"),
                    n(c.eval_max_new_tokens),
                    s("--out"),
                    p(&format!("eval/{m}-{set}")),
                ],
            );
        }
    }
    for (a, b) in [("base", "grpo"), ("base", "corr-po"), ("grpo", "corr-po")] {
        for (_, set) in eval_sets() {
            add(
                &format!("compare-{b}-vs-{a}-{set}"),
                vec![
                    s("eval"),
                    s("compare"),
                    p(&format!("eval/{a}-{set}")),
                    p(&format!("eval/{b}-{set}")),
                    s("--out"),
                    p(&format!("eval/compare-{b}-vs-{a}-{set}.json")),
                ],
            );
        }
    }
    // 6. The fingerprint after RL, on the same texts as the default model's (paired tests).
    for (_, m) in &RL_MODELS[1..] {
        add(
            &format!("fp-{m}-arith"),
            vec![
                s("fingerprint"),
                s("--model"),
                model_of(m),
                s("--input"),
                p("fp/base-arith/responses.jsonl"),
                s("--step-mode"),
                s("mean-logit"),
                s("--out"),
                p(&format!("fp/{m}-arith")),
            ],
        );
    }
    add(
        "fp-compare-rl",
        vec![
            s("fingerprint"),
            s("compare"),
            p("fp/base-arith"),
            p("fp/grpo-arith"),
            p("fp/corr-po-arith"),
            s("--out"),
            p("fp/cmp-rl"),
        ],
    );
    // 7. Token-level rho, the level of the paper's figures, on the first fp_token_prompts
    // texts of the step measurements above (METHOD's `mean` step rho comes with it).
    let token_fp = |model: String, texts: &str, out: &str| -> Vec<String> {
        vec![
            s("fingerprint"),
            s("--model"),
            model,
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
    let last = format!("sft-step-{}", c.sft_steps);
    for (name, model, texts) in [
        ("base-gsm8k", c.model.clone(), "base-gsm8k"),
        ("base-arith", c.model.clone(), "base-arith"),
        (last.as_str(), ckpt(&sft, c.sft_steps), last.as_str()),
        ("grpo-arith", model_of("grpo"), "base-arith"),
        ("corr-po-arith", model_of("corr-po"), "base-arith"),
    ] {
        add(
            &format!("fp-{name}-token"),
            token_fp(model, texts, &format!("{name}-token")),
        );
    }
    add(
        "fp-compare-sft-token",
        vec![
            s("fingerprint"),
            s("compare"),
            p("fp/base-gsm8k-token"),
            p(&format!("fp/{last}-token")),
            s("--out"),
            p("fp/cmp-sft-token"),
            s("--pair-by"),
            s("prompt"),
        ],
    );
    add(
        "fp-compare-rl-token",
        vec![
            s("fingerprint"),
            s("compare"),
            p("fp/base-arith-token"),
            p("fp/grpo-arith-token"),
            p("fp/corr-po-arith-token"),
            s("--out"),
            p("fp/cmp-rl-token"),
        ],
    );
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
