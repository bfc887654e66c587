//! `egi`: the command-line front end. Each subcommand lives in its own module; this file only
//! parses arguments, sets up logging and threads, and dispatches. [`main`] is the whole
//! command: the `egi` binary calls it, and so does the `egi` command the Python package
//! installs (through its extension module), with the process's own arguments.

mod bench;
mod cmd_data;
mod cmd_eval;
pub mod cmd_fingerprint;
pub mod cmd_generate;
mod cmd_plot;
pub mod cmd_score;
mod cmd_study;
mod cmd_train;
mod common;
mod lock;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "egi",
    version,
    about = "Look inside reasoning language models and train them",
    long_about = "egi measures how language models reason (entropy and logit-gradient \
fingerprints) and trains them with verifiable rewards, on a laptop CPU or a GPU.\n\n\
Every command takes --model: a GGUF file, a Hugging Face model directory \
(config.json + *.safetensors + tokenizer.json), `default` (SmolLM2-135M-Instruct, fetched \
once into ~/.cache/egi), or a hub id (needs a build with --features hub).",
    after_help = "Examples:\n  egi fingerprint --demo --out fingerprint-demo\n  \
egi fingerprint --model default --input texts.jsonl --out fp\n  \
egi fingerprint compare fp-base fp-sft\n  \
egi eval --model default --bench gsm8k --limit 100 --greedy --out eval-gsm8k\n  \
egi verify --answer \"so \\\\boxed{3/4}\" --gold 0.75\n  \
egi data arith --n 2000 --steps 1..2 --out arith.jsonl\n  \
egi train --algo corr-po --model default --data arith.jsonl --out runs/corrpo --max-steps 50\n  \
egi sft --model default --data gsm8k-train --out runs/sft\n  \
egi plot runs/grpo runs/corrpo --out plots\n  \
egi study --config configs/study.toml --out runs/study\n  \
egi generate --model default --chat --prompt \"What is 12 * 7?\"\n  \
egi score --model default --input texts.jsonl --out scores.jsonl\n  \
egi save --model default --out smollm2-hf\n  egi bench --model default   (add --probe for the fingerprint)"
)]
struct Cli {
    /// Worker threads for tensor math (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Where models compute: `cpu`, `cuda` (first GPU), `cuda:N`, or `auto` (a GPU when this
    /// egi was built with `--features cuda` and one is present, else the CPU). GPU set-up:
    /// docs/gpu.md.
    #[arg(long, global = true, default_value = "auto", value_name = "DEVICE")]
    device: String,
    /// Precision of weights and activations: `f32`, or `bf16` (half the memory, faster on
    /// GPUs; entropies, log-probs, norms and statistics are still computed in f32 or f64).
    #[arg(long, global = true, default_value = "f32", value_name = "DTYPE")]
    dtype: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Entropy / gradient-influence fingerprint of responses (docs/method.md sections 2-3), or
    /// `egi fingerprint compare DIR...`.
    Fingerprint(cmd_fingerprint::Args),
    /// Accuracy on a math benchmark: Pass@1, Pass@k, greedy accuracy with CIs; or
    /// `egi eval compare DIR1 DIR2`.
    Eval(cmd_eval::Args),
    /// Check answers against gold answers with the math verifier.
    Verify(cmd_eval::VerifyArgs),
    /// Sample completions of a prompt (batched, KV-cached).
    Generate(cmd_generate::Args),
    /// Per-token log-probabilities and entropies of given responses (teacher forcing).
    Score(cmd_score::Args),
    /// Training curves of RL / SFT runs side by side (metrics.jsonl, eval.jsonl): SVG, PNG, CSV.
    Plot(cmd_plot::Args),
    /// Write a model (e.g. a GGUF file) as a Hugging Face directory transformers can load.
    Save(common::SaveArgs),
    /// Print a model's configuration and parameter counts.
    Info(common::InfoArgs),
    /// Measure prefill, decode (batch 1 and 16) and forward+backward speed; with --probe, the
    /// fingerprint's fast path against its oracle. Prints a table.
    Bench(bench::Args),
    /// Data sets: `egi data list` shows those bundled with egi (GSM8K, MATH-500, AIME24/25,
    /// AMC23); `egi data arith` writes seeded arithmetic word problems with exact answers.
    Data(cmd_data::Args),
    /// RL from verifiable rewards: CorR-PO, GRPO, Dr.GRPO, DAPO, GSPO (docs/method.md sections 4-5).
    Train(Box<cmd_train::TrainArgs>),
    /// Supervised fine-tuning on prompt/response pairs (e.g. GSM8K worked solutions).
    Sft(cmd_train::SftArgs),
    /// Reproduce the paper's findings at small scale: fingerprints, SFT, GRPO vs CorR-PO,
    /// evaluations, and one report (DIR/report/report.md and report.html). Resumable.
    Study(cmd_study::Args),
}

/// Where every `--help` sends readers for what egi computes: a file of the repository.
const METHOD_POINTER: &str =
    "What egi computes, every option and the reasons for its defaults: docs/method.md in egi's repository.";

/// Every command's help ends with [`METHOD_POINTER`].
fn with_method_pointer(cmd: clap::Command) -> clap::Command {
    let help = match cmd.get_after_help() {
        Some(h) => format!("{h}\n\n{METHOD_POINTER}"),
        None => METHOD_POINTER.to_string(),
    };
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let mut cmd = cmd.after_help(help);
    for n in names {
        cmd = cmd.mut_subcommand(n, with_method_pointer);
    }
    cmd
}

fn parse_cli(args: Vec<std::ffi::OsString>) -> Cli {
    let matches = with_method_pointer(Cli::command()).get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// An error as egi reports it, on one line: the chain of causes, outermost first (the first
/// line of each: candle appends backtraces to some messages). The Python package raises its
/// exceptions with the same text.
pub fn one_line(e: &anyhow::Error) -> String {
    let msg: Vec<String> = e
        .chain()
        .map(|c| {
            c.to_string()
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .collect();
    msg.join(": ")
}

/// Runs the `egi` command with `args` (the program name first, as in `std::env::args_os`)
/// and ends the process: exit status 0, 1 with a one-line `error:` on stderr, or clap's 2
/// for bad arguments (and `egi verify`'s verdict statuses, 3-5). It owns the process: it sets the allocator's and SIGPIPE's behaviour.
pub fn main(args: Vec<std::ffi::OsString>) -> ! {
    // Before any thread starts: freed tensors stay in the process for the next step.
    egi_model::alloc::keep_freed_memory();
    // Rust ignores SIGPIPE, so a print into a closed pipe (`egi data list | head`) panics;
    // the default action ends the process quietly, as other Unix tools do. Sockets are not
    // affected: std sends with MSG_NOSIGNAL.
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = parse_cli(args);
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    // candle asks for its thread count before every matmul and, without RAYON_NUM_THREADS,
    // re-reads /proc/cpuinfo each time (30% of decoding time on small models): decide once.
    let threads = cli
        .threads
        .unwrap_or_else(candle_core::utils::get_num_threads);
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    common::set_compute(&cli.device, &cli.dtype);
    let r = match cli.cmd {
        Cmd::Fingerprint(a) => cmd_fingerprint::run(a),
        Cmd::Eval(a) => cmd_eval::run(a),
        Cmd::Verify(a) => cmd_eval::verify_cmd(a).map(|status| {
            let _ = std::io::Write::flush(&mut std::io::stdout());
            if status != 0 {
                std::process::exit(status);
            }
        }),
        Cmd::Generate(a) => cmd_generate::run(a),
        Cmd::Score(a) => cmd_score::run(a),
        Cmd::Plot(a) => cmd_plot::run(a),
        Cmd::Save(a) => common::save(a),
        Cmd::Info(a) => common::info(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Data(a) => cmd_data::run(a),
        Cmd::Train(a) => cmd_train::train(*a),
        Cmd::Sft(a) => cmd_train::sft(a),
        Cmd::Study(a) => cmd_study::run(a),
    };
    if let Err(e) = r {
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
    // process::exit runs no destructors: write out what stdout still holds.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(0);
}
