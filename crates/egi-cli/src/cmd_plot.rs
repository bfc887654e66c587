//! `egi plot`: training curves of several RL / SFT runs side by side, from their
//! `metrics.jsonl` (and `eval.jsonl` when present), as SVG, PNG and a long-format CSV.
//! The reading and drawing are `egi_report::curves`.

use std::path::PathBuf;

use anyhow::Result;
use egi_report::curves::{write_curves, CurveOptions};

#[derive(clap::Args)]
// The variant's doc comment in main.rs is the short description; the rest goes after it.
#[command(
    after_help = "A run is a directory written by `egi train` or `egi sft --out` holding \
metrics.jsonl (one JSON object per training step; null or missing values are gaps). Its \
eval.jsonl ({\"step\", \"accuracy\", \"ci95\": [lo, hi]} per line) adds an eval_accuracy panel \
of points with error bars. Runs are named after their directory, or config.json's \"name\" \
(and \"algo\"). Writes DIR/curves.svg, DIR/curves.png and DIR/curves.csv (long format: \
run,step,metric,value; pandas.read_csv reads it as is).\n\n\
Examples:\n  egi plot runs/grpo runs/corr-po\n  \
egi plot runs/grpo runs/corr-po --metrics reward_mean,accuracy,rho_mean --smooth 0.9 --out cmp\n  \
egi plot runs/sft --metrics all --smooth 20"
)]
pub struct Args {
    /// Training run directories (or their metrics.jsonl files).
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// Output directory for curves.svg, curves.png and curves.csv (created if needed).
    #[arg(long, value_name = "DIR", default_value = "plots")]
    pub out: PathBuf,
    /// Comma-separated metrics to draw, in panel order, or `all`. Default: those of
    /// reward_mean, accuracy, rho_mean, entropy_mean, response_len_mean, kl, clip_frac,
    /// grad_norm, loss, lr, seconds_step that some run logs, plus eval_accuracy when a run
    /// has eval.jsonl.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub metrics: Option<Vec<String>>,
    /// Exponential moving average over steps: a weight in (0, 1) as in TensorBoard (0.9 is
    /// strong), or a span of N >= 1 steps (weight (N-1)/(N+1), as pandas' ewm(span=N)). The
    /// raw values stay visible, faint. 0: off.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub smooth: f64,
    /// The metrics.jsonl field on the x axis (any numeric field, e.g. one counting samples).
    #[arg(long, value_name = "FIELD", default_value = "step")]
    pub x: String,
    /// Figure title.
    #[arg(long, default_value = "training curves")]
    pub title: String,
}

pub fn run(a: Args) -> Result<()> {
    let opts = CurveOptions {
        metrics: a.metrics,
        smooth: a.smooth,
        x: a.x,
        title: a.title,
    };
    let report = write_curves(&a.runs, &a.out, &opts)?;
    for r in &report.runs {
        let span = match r.span {
            Some((lo, hi)) => format!("{} {lo}..{hi}", opts.x),
            None => "no steps yet".into(),
        };
        let evals = if r.evaluations == 0 {
            String::new()
        } else {
            format!(", {} evaluations", r.evaluations)
        };
        println!("{}: {} lines ({span}{evals})", r.name, r.lines);
    }
    println!("metrics: {}", report.metrics.join(", "));
    for f in &report.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}
