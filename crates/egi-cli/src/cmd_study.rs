//! `egi study`: the arguments, a progress bar over the stages, and the report. What the study
//! runs and how its report is written: the egi-study crate.

use std::path::PathBuf;

use anyhow::{Context, Result};
use egi_study::{stages, StudyConfig};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
egi study --config configs/study.toml --out runs/study        (the default study, a few hours on 2 cores)\n  \
egi study --quick --out runs/study-quick                      (every stage at toy size, minutes)\n  \
egi study --out runs/study --report-only                      (rewrite the report from the outputs)\n\n\
Rerun the same command after an interruption: finished stages are skipped.")]
pub struct Args {
    /// Study settings, TOML or JSON (keys as in DIR/study_config.json; unknown keys are an
    /// error). Without it: the settings of the study already in --out, else the defaults of
    /// configs/study.toml (or the --quick ones).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Start from toy-size settings (a smoke test of every stage; the numbers mean nothing).
    #[arg(long)]
    pub quick: bool,
    /// Output directory: stage outputs, logs, and report/ (report.md, report.html, plots).
    #[arg(long)]
    pub out: PathBuf,
    /// Only rewrite the report from the outputs already in --out.
    #[arg(long)]
    pub report_only: bool,
    /// Print the study's commands and exit.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: Args) -> Result<()> {
    let cfg = StudyConfig::load(a.config.as_deref(), a.quick, &a.out)?;
    let dir = &a.out;
    let list = stages(&cfg, dir);
    if a.dry_run {
        for st in &list {
            println!("{}", egi_study::command_line(st));
        }
        return Ok(());
    }
    let _lock = crate::lock::lock_dir(dir)?;
    if !a.report_only {
        egi_study::prepare(dir, &cfg, &list)?;
        // Each stage is this egi run again. Under the Python package's `egi` command this
        // process is Python, so its launcher names the command to run in EGI_EXE.
        let exe = match std::env::var_os("EGI_EXE") {
            Some(p) => std::path::PathBuf::from(p),
            None => std::env::current_exe().context("cannot locate the egi executable")?,
        };
        let bar = crate::common::progress(list.len() as u64, "study");
        for st in &list {
            bar.set_message(st.name.clone());
            if egi_study::run_stage(&exe, dir, st)? {
                bar.println(format!("done: {}", st.name));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    let threads = candle_core::utils::get_num_threads();
    let report = egi_study::report::write(dir, &cfg, &list, threads)?;
    println!("wrote {}", report.display());
    Ok(())
}
