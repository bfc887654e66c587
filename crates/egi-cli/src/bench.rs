//! `egi bench`: runtime speed on one model, as a table. Every figure is measured in this run;
//! the decode figures sit beside the bound that memory bandwidth sets (all weights are read
//! once per decoding step), measured here too.

use std::time::Instant;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use egi_generate::{generate, Request, SamplingParams};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "default")]
    pub model: String,
    /// Prompt length for prefill and for forward+backward.
    #[arg(long, default_value_t = 256)]
    pub tokens: usize,
    /// Tokens generated per sequence in the decode measurements.
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
    /// Batch size of the batched decode measurement.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Repetitions; the table reports the median.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Also print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Benchmark the fingerprint probe instead: the oracle path (autograd, one backward per
    /// token, full SVDs) against the fast path (batched hand-written backward, small
    /// eigenproblems) and step-sum mode, on the same texts.
    #[arg(long)]
    pub probe: bool,
    /// Probe benchmark texts: JSONL of {"id", "prompt", "response"} (default: built-in).
    #[arg(long)]
    pub input: Option<std::path::PathBuf>,
    /// Benchmark one RL step instead: GRPO and CorR-PO with --train-prompts prompts x
    /// --group-size responses x --new-tokens tokens (all weights trainable), split by phase.
    #[arg(long)]
    pub train: bool,
    /// Train benchmark: prompts per step.
    #[arg(long, default_value_t = 2)]
    pub train_prompts: usize,
    /// Train benchmark: responses per prompt.
    #[arg(long, default_value_t = 4)]
    pub group_size: usize,
    /// Train benchmark: also time CorR-PO with rho over these layers only (e.g. 22-29).
    #[arg(long)]
    pub fp_layers: Option<String>,
    /// Train benchmark: which rows to time, comma-separated, among grpo, autograd (GRPO with
    /// candle's autograd backward) and corr-po (all layers, and --fp-layers if given). GRPO
    /// always runs first: it is the baseline of the ratio column.
    #[arg(long, default_value = "grpo,autograd,corr-po", value_delimiter = ',')]
    pub rows: Vec<String>,
    /// Probe benchmark: tokens per response timed on the (slow) oracle path.
    #[arg(long, default_value_t = 3)]
    pub oracle_tokens: usize,
}

/// Built-in probe benchmark texts (written for egi).
const PROBE_TEXTS: [(&str, &str); 2] = [
    (
        "A shop sells pens at 3 dollars each. Ana buys 7 pens and pays with a 50 dollar bill. How much change does she get?",
        "Each pen costs 3 dollars, so 7 pens cost 7 * 3 = 21 dollars.\nAna pays with 50 dollars.\nHer change is 50 - 21 = 29 dollars.\nThe answer is 29.",
    ),
    (
        "A farmer has 12 cows and buys 8 more. Each cow eats 5 kg of hay a day. How much hay do the cows eat in one day?",
        "The farmer now has 12 + 8 = 20 cows.\nEach cow eats 5 kg of hay, so 20 cows eat 20 * 5 = 100 kg.\nThe cows eat 100 kg of hay a day.",
    ),
];

fn probe_bench(a: &Args) -> Result<()> {
    use egi_probe::fingerprint::StepMode;
    use egi_probe::{fingerprint, oracle, ProbeOptions};
    let m = crate::common::load_model(&a.model)?;
    let tok = m.tokenizer()?;
    let texts: Vec<(String, String)> = match &a.input {
        Some(p) => egi_eval::data::read_response_lines(p)?
            .into_iter()
            .map(|l| (l.prompt, l.response))
            .collect(),
        None => PROBE_TEXTS
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect(),
    };
    let (_, mm) = matmul_rate(m.model.device(), m.model.dtype())?;
    let opts = ProbeOptions::default();
    let matrices = opts.matrices(m.model.cfg.num_layers)?;
    let (mut t_oracle, mut n_oracle) = (0f64, 0usize);
    let (mut t_fast, mut n_fast, mut flops) = (0f64, 0usize, 0f64);
    let (mut t_step, mut n_step) = (0f64, 0usize);
    let mut worst = 0f64;
    for (prompt, response) in &texts {
        let enc = egi_model::text::encode_pair(tok, prompt, response, false)?;
        let fp = fingerprint(
            &m.model,
            &enc.ids,
            enc.n_prompt,
            &enc.char_starts,
            response,
            &opts,
        )?;
        t_fast += fp.seconds;
        n_fast += fp.tokens.len();
        flops += fp.backward_flops;
        let sopts = ProbeOptions {
            step_mode: StepMode::SumLogits,
            ..opts.clone()
        };
        let fs = fingerprint(
            &m.model,
            &enc.ids,
            enc.n_prompt,
            &enc.char_starts,
            response,
            &sopts,
        )?;
        t_step += fs.seconds;
        n_step += fs.tokens.len();
        for t in fp.tokens.iter().take(a.oracle_tokens) {
            let start = Instant::now();
            let want = oracle::gradient_norms(
                &m.model,
                &enc.ids,
                &[(t.pos, t.id)],
                &matrices,
                opts.target,
                opts.norm,
            )?;
            t_oracle += start.elapsed().as_secs_f64();
            n_oracle += 1;
            for (x, y) in t.norms.as_ref().unwrap().iter().zip(&want) {
                worst = worst.max((x - y).abs() / y.abs().max(1e-12));
            }
        }
    }
    let (so, sf, ss) = (
        t_oracle / n_oracle as f64,
        t_fast / n_fast as f64,
        t_step / n_step as f64,
    );
    let rate = flops / t_fast / 1e9;
    println!(
        "egi bench --probe: {} ({} texts, {} response tokens), {} threads",
        m.source.path().display(),
        texts.len(),
        n_fast,
        candle_core::utils::get_num_threads()
    );
    println!("| path | seconds per response token | speed-up vs oracle |");
    println!("|---|---|---|");
    println!("| oracle: autograd, one backward per token, full SVD ({n_oracle} tokens) | {so:.3} | 1.0x |");
    println!("| fast, per-token influences | {sf:.3} | {:.1}x |", so / sf);
    println!(
        "| fast, step-sum mode (one gradient per step) | {ss:.4} | {:.0}x |",
        so / ss
    );
    println!("fast path vs oracle on the timed tokens: worst relative error of a nuclear norm {worst:.1e}");
    println!("fast path backward: {rate:.1} GFLOP/s achieved (2 x non-embedding params x prefix per token) vs {mm:.1} GFLOP/s {:?} matmul ({:.0}%)", m.model.dtype(), 100.0 * rate / mm);
    if a.json {
        println!(
            "{}",
            serde_json::json!({"oracle_s_per_token": so, "fast_s_per_token": sf, "step_s_per_token": ss,
            "speedup_fast": so / sf, "speedup_step": so / ss, "worst_rel_err": worst, "gflops": rate, "matmul_gflops": mm})
        );
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Copy bandwidth in GB/s (bytes read + written) of `dev`'s memory, from a 256 MiB buffer.
fn copy_bandwidth(dev: &Device) -> Result<f64> {
    let n = 64 << 20; // f32 elements
    let mut best = 0.0f64;
    if dev.is_cpu() {
        let src = vec![1.0f32; n];
        let mut dst = vec![0.0f32; n];
        for _ in 0..5 {
            let t = Instant::now();
            dst.copy_from_slice(&src);
            let s = t.elapsed().as_secs_f64();
            std::hint::black_box(&dst);
            best = best.max(2.0 * (n * 4) as f64 / s / 1e9);
        }
        return Ok(best);
    }
    let src = Tensor::ones(n, DType::F32, dev)?;
    for _ in 0..5 {
        dev.synchronize()?;
        let t = Instant::now();
        let dst = src.copy()?;
        dev.synchronize()?;
        best = best.max(2.0 * (n * 4) as f64 / t.elapsed().as_secs_f64() / 1e9);
        drop(dst);
    }
    Ok(best)
}

/// Matrix-multiply rate in GFLOP/s on `dev` in `dtype` (n^3 products through candle: 1024 on
/// the CPU, 8192 on a GPU).
fn matmul_rate(dev: &Device, dtype: DType) -> Result<(usize, f64)> {
    let n = if dev.is_cpu() { 1024 } else { 8192 };
    let a = Tensor::randn(0f32, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    let mut times = vec![];
    for _ in 0..5 {
        dev.synchronize()?;
        let t = Instant::now();
        let c = a.matmul(&b)?;
        dev.synchronize()?;
        times.push(t.elapsed().as_secs_f64());
        drop(c);
    }
    Ok((n, 2.0 * (n as f64).powi(3) / median(times) / 1e9))
}

pub fn run(a: Args) -> Result<()> {
    if a.probe {
        return probe_bench(&a);
    }
    if a.train {
        return train_bench(&a);
    }
    let mut m = crate::common::load_model(&a.model)?;
    let tok = m.tokenizer()?.clone();
    let eos: Vec<u32> = vec![]; // never stop early: every request decodes exactly new_tokens
    let cfg = m.model.cfg.clone();
    let (body, emb) = cfg.n_params();
    let threads = candle_core::utils::get_num_threads();
    let dev = m.model.device().clone();
    let bw = copy_bandwidth(&dev)?;
    let (mm_n, mm) = matmul_rate(&dev, m.model.dtype())?;
    // Prompt: real text, repeated to the requested length.
    let base = tok.encode(
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May? ",
        false,
    )?;
    let prompt: Vec<u32> = base.iter().cycle().take(a.tokens).cloned().collect();

    // Prefill: one cached forward over the prompt, last-position logits.
    let mut t_prefill = vec![];
    for _ in 0..a.reps {
        let t = Instant::now();
        let req = Request {
            prompt_ids: prompt.clone(),
            params: SamplingParams {
                temperature: 0.0,
                max_new_tokens: 1,
                ..Default::default()
            },
        };
        generate(&m.model, &tok, &eos, &[req])?;
        t_prefill.push(t.elapsed().as_secs_f64());
    }
    let prefill = a.tokens as f64 / median(t_prefill.clone());

    // Decode: time to generate new_tokens minus the one-token (prefill) time.
    let short: Vec<u32> = prompt[..32.min(prompt.len())].to_vec();
    let decode = |batch: usize| -> Result<f64> {
        let reqs: Vec<Request> = (0..batch)
            .map(|i| Request {
                prompt_ids: short.clone(),
                params: SamplingParams {
                    temperature: 0.7,
                    top_p: 0.95,
                    max_new_tokens: a.new_tokens,
                    seed: i as u64,
                    ..Default::default()
                },
            })
            .collect();
        let one: Vec<Request> = reqs
            .iter()
            .map(|r| Request {
                params: SamplingParams {
                    max_new_tokens: 1,
                    ..r.params.clone()
                },
                ..r.clone()
            })
            .collect();
        let mut rates = vec![];
        for _ in 0..a.reps {
            let t = Instant::now();
            generate(&m.model, &tok, &eos, &one)?;
            let t1 = t.elapsed().as_secs_f64();
            let t = Instant::now();
            generate(&m.model, &tok, &eos, &reqs)?;
            let tn = t.elapsed().as_secs_f64();
            rates.push((batch * (a.new_tokens - 1)) as f64 / (tn - t1).max(1e-9));
        }
        Ok(median(rates))
    };
    let d1 = decode(1)?;
    let db = decode(a.batch)?;

    // Forward + backward over `tokens` tokens, every parameter trainable, loss = -sum log p.
    m.model.set_trainable(|_| true)?;
    let ids = Tensor::new(prompt.as_slice(), &dev)?.unsqueeze(0)?;
    let mut t_fb = vec![];
    for _ in 0..a.reps {
        let t = Instant::now();
        let attn = egi_model::AttnInput::causal(1, a.tokens - 1, m.model.dtype(), &dev)?;
        let h = m
            .model
            .forward_hidden(&ids.narrow(1, 0, a.tokens - 1)?, &attn)?
            .squeeze(0)?;
        let (lp, _) = egi_model::pass::head::logprobs(
            &m.model,
            &h,
            &ids.narrow(1, 1, a.tokens - 1)?.squeeze(0)?,
            128,
        )?;
        let grads = lp.sum_all()?.neg()?.backward()?;
        dev.synchronize()?; // a GPU returns before its kernels finish
        std::hint::black_box(grads);
        t_fb.push(t.elapsed().as_secs_f64());
    }
    let fb = median(t_fb);

    let bytes_per_step = ((body + emb) * m.model.dtype().size_in_bytes()) as f64; // tied lm_head counted once
    let bound = bw * 1e9 / bytes_per_step;
    println!(
        "egi bench: {} ({} layers, hidden {}, {:.1}M params), {:?} on {}, {threads} threads",
        m.source.path().display(),
        cfg.num_layers,
        cfg.hidden_size,
        (body + emb) as f64 / 1e6,
        m.model.dtype(),
        egi_model::device_name(&dev),
    );
    println!("| measurement | value |");
    println!("|---|---|");
    println!("| memory copy bandwidth | {bw:.1} GB/s |");
    println!(
        "| {:?} matmul {mm_n}^3 | {mm:.1} GFLOP/s |",
        m.model.dtype()
    );
    println!("| prefill ({} tokens) | {prefill:.0} tokens/s |", a.tokens);
    println!("| decode, batch 1 | {d1:.1} tokens/s |");
    println!(
        "| decode, batch {} | {db:.1} tokens/s ({:.1}x batch 1) |",
        a.batch,
        db / d1
    );
    println!("| decode bound from bandwidth (weights read per step) | {bound:.1} steps/s |");
    println!(
        "| forward+backward, {} tokens, all params | {fb:.2} s |",
        a.tokens
    );
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "model": m.source.path(), "threads": threads, "copy_gb_s": bw, "matmul_gflop_s": mm, "matmul_n": mm_n, "device": egi_model::device_name(&dev),
                "prefill_tok_s": prefill, "decode_b1_tok_s": d1, "decode_batch": a.batch,
                "decode_batch_tok_s": db, "decode_bound_steps_s": bound, "fwd_bwd_s": fb,
            })
        );
    }
    Ok(())
}

/// Built-in RL benchmark problems (generated by `egi data arith`-style templates).
const TRAIN_PROBLEMS: [(&str, &str); 2] = [
    ("Mia has 7 marbles. She buys 5 more, then gives away 3. How many marbles does she have now?", "9"),
    ("A baker makes 24 cookies and puts them equally into 4 boxes. How many cookies are in each box?", "6"),
];

fn train_bench(a: &Args) -> Result<()> {
    use egi_rl::{Algo, TrainConfig, Trainer};
    for r in &a.rows {
        if !["grpo", "autograd", "corr-po"].contains(&r.as_str()) {
            anyhow::bail!("--rows: unknown row {r:?}; choose among grpo, autograd, corr-po");
        }
    }
    let m = crate::common::load_model(&a.model)?;
    let tok = m.tokenizer()?;
    let problems: Vec<egi_eval::data::Problem> = TRAIN_PROBLEMS
        .iter()
        .enumerate()
        .map(|(i, (p, g))| egi_eval::data::Problem {
            id: format!("bench-{i}"),
            problem: p.to_string(),
            gold: g.to_string(),
        })
        .collect();
    // The reward is the parity of the response's length: every group has mixed rewards and
    // every step runs a full update, which a speed measurement needs (a weak model's all-wrong
    // groups would skip it).
    let task = egi_rl::LengthParity(egi_rl::MathTask::new(
        problems,
        tok,
        m.eos_ids(),
        "boxed",
        false,
    )?);
    let reps = a.reps.max(1);
    let mut rows = vec![];
    use egi_rl::Backward;
    // The first row is the baseline of the ratio column; the autograd row shows what the
    // hand-written backward saves, measured in the same run.
    let mut runs: Vec<(Algo, Option<Vec<usize>>, Backward, String)> = vec![
        (Algo::Grpo, None, Backward::Fused, "grpo".into()),
        (
            Algo::Grpo,
            None,
            Backward::Autograd,
            "grpo (candle autograd backward)".into(),
        ),
        (
            Algo::CorrPo,
            None,
            Backward::Fused,
            "corr-po (all layers)".into(),
        ),
    ];
    let wanted = |label: &str| {
        label == "grpo"
            || (label.starts_with("grpo (") && a.rows.iter().any(|r| r == "autograd"))
            || (label.starts_with("corr-po") && a.rows.iter().any(|r| r == "corr-po"))
    };
    if let Some(l) = &a.fp_layers {
        runs.push((
            Algo::CorrPo,
            egi_probe::fingerprint::parse_layers(l, m.model.cfg.num_layers)?,
            Backward::Fused,
            format!("corr-po (layers {l})"),
        ));
    }
    runs.retain(|r| wanted(&r.3));
    for (algo, fp_layers, backward, label) in runs {
        let cfg = TrainConfig {
            algo,
            fp_layers,
            backward,
            data: "built-in".into(),
            max_steps: reps + 1,
            group_size: a.group_size,
            batch_prompts: a.train_prompts,
            max_new_tokens: a.new_tokens,
            lr: 1e-6,
            save_every: 0,
            seed: 1,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir()?;
        let mut tr = Trainer::new(
            cfg,
            m.model.frozen_copy()?,
            Some(tok),
            m.generation.clone(),
            &task,
            None,
            dir.path(),
            false,
        )?;
        let mut ph: Vec<[f64; 6]> = vec![];
        for i in 0..reps + 1 {
            // The last step also writes the final checkpoint: time the steps before it.
            let r = tr.step()?;
            if i == 0 && reps > 1 {
                continue; // warm-up
            }
            let g = |k: &str| r[k].as_f64().unwrap_or(0.0);
            ph.push([
                g("seconds_step"),
                g("seconds_rollout"),
                g("seconds_reward"),
                g("seconds_fingerprint"),
                g("seconds_update"),
                g("tokens"),
            ]);
            eprintln!("{label} step {}: {:.2} s", i + 1, g("seconds_step"));
        }
        // Median over the timed steps of each column.
        let med: Vec<f64> = (0..6)
            .map(|c| median(ph.iter().map(|p| p[c]).collect()))
            .collect();
        rows.push((label, med));
    }
    let base = rows[0].1[0];
    println!(
        "RL step: {} prompts x group {} x {} new tokens, all {} weights trainable, f32, {} threads (median of {} steps)",
        a.train_prompts,
        a.group_size,
        a.new_tokens,
        m.model.cfg.n_params().0 + m.model.cfg.n_params().1,
        candle_core::utils::get_num_threads(),
        reps
    );
    println!("| algo | step s | rollout s | reward s | fingerprint s | update s | tokens | x GRPO step |");
    println!("|---|---|---|---|---|---|---|---|");
    for (label, r) in &rows {
        println!(
            "| {} | {:.2} | {:.2} | {:.3} | {:.2} | {:.2} | {:.0} | {:.2} |",
            label,
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[0] / base
        );
    }
    if a.json {
        let j: serde_json::Value = rows
            .iter()
            .map(|(label, r)| {
                (
                    label.clone(),
                    serde_json::json!({"seconds_step": r[0], "seconds_rollout": r[1], "seconds_reward": r[2],
                        "seconds_fingerprint": r[3], "seconds_update": r[4], "tokens": r[5], "vs_grpo": r[0] / base}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        println!("{j}");
    }
    Ok(())
}
