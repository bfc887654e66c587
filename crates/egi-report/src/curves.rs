//! Training curves of several RL / SFT runs side by side (`egi plot`): reading each run
//! directory (`metrics.jsonl`, `eval.jsonl` when present, `config.json` for its name), one
//! line per step, one panel per metric, drawn by [`plot::curves`] as SVG and PNG beside a
//! long-format CSV.
//!
//! Error messages name the `egi plot` flags (`--smooth`, `--metrics`, `--x`) that the fields
//! of [`CurveOptions`] come from.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

use crate::fs::write_atomic;
use crate::plot::{self, Curve, Panel};

/// Plotted by default, in this order, when at least one run logs a value for them.
pub const DEFAULT_METRICS: &[&str] = &[
    "reward_mean",
    "accuracy",
    "rho_mean",
    "entropy_mean",
    "response_len_mean",
    "kl",
    "clip_frac",
    "grad_norm",
    "loss",
    "lr",
    "seconds_step",
];

/// The panel drawn from `eval.jsonl`.
pub const EVAL: &str = "eval_accuracy";

/// What to draw: `egi plot`'s options.
#[derive(Clone, Debug)]
pub struct CurveOptions {
    /// Metrics to draw, in panel order, or `["all"]`; `None` (or only blank names): those of
    /// [`DEFAULT_METRICS`] that some run logs, plus `eval_accuracy` when a run has
    /// eval.jsonl.
    pub metrics: Option<Vec<String>>,
    /// Exponential moving average over steps: a weight in (0, 1), or a span of N >= 1 steps
    /// (weight (N-1)/(N+1)); 0: off. See [`smoothing_weight`].
    pub smooth: f64,
    /// The metrics.jsonl field on the x axis.
    pub x: String,
    /// Figure title.
    pub title: String,
}

impl Default for CurveOptions {
    fn default() -> Self {
        Self {
            metrics: None,
            smooth: 0.0,
            x: "step".into(),
            title: "training curves".into(),
        }
    }
}

/// What [`write_curves`] read and wrote.
#[derive(Clone, Debug)]
pub struct CurvesReport {
    /// One per run, in the order given.
    pub runs: Vec<RunSummary>,
    /// The panels drawn, in order.
    pub metrics: Vec<String>,
    /// `curves.svg`, `curves.png` and `curves.csv` in the output directory.
    pub files: Vec<PathBuf>,
}

/// One run as read.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Its name in the legend and the CSV (made unique among the runs).
    pub name: String,
    /// metrics.jsonl lines kept: one per x value.
    pub lines: usize,
    /// The first and last x value, when there is a line.
    pub span: Option<(f64, f64)>,
    /// eval.jsonl lines kept: one per step.
    pub evaluations: usize,
}

/// Reads `runs` (run directories, or their metrics.jsonl files) and writes `out/curves.svg`,
/// `out/curves.png` and `out/curves.csv` (long format: run, x, metric, value), creating `out`
/// if needed.
pub fn write_curves(runs: &[PathBuf], out: &Path, o: &CurveOptions) -> Result<CurvesReport> {
    let weight = smoothing_weight(o.smooth)?;
    let mut runs = runs
        .iter()
        .map(|p| read_run(p, &o.x))
        .collect::<Result<Vec<_>>>()?;
    disambiguate(&mut runs);

    let any_eval = runs.iter().any(|r| !r.eval.is_empty());
    let metrics = choose_metrics(&runs, o.metrics.as_deref(), any_eval)?;
    let mut panels = Vec::with_capacity(metrics.len());
    for m in &metrics {
        if m == EVAL && o.x != "step" {
            // eval.jsonl is keyed by step only.
            tracing::warn!("eval_accuracy is only drawn with --x step; leaving it out");
            continue;
        }
        panels.push(panel(&runs, m));
    }

    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    plot::curves(&out.join("curves"), &names, &panels, &o.x, &o.title, weight)?;
    let csv = to_csv(&runs, &panels, &o.x);
    write_atomic(&out.join("curves.csv"), csv.as_bytes())?;

    Ok(CurvesReport {
        runs: runs
            .iter()
            .map(|r| RunSummary {
                name: r.name.clone(),
                lines: r.x.len(),
                span: r.x.first().zip(r.x.last()).map(|(lo, hi)| (*lo, *hi)),
                evaluations: r.eval.len(),
            })
            .collect(),
        metrics: panels.into_iter().map(|p| p.name).collect(),
        files: ["svg", "png", "csv"]
            .iter()
            .map(|ext| out.join(format!("curves.{ext}")))
            .collect(),
    })
}

/// One run, as columns over its steps (sorted by x, one line per x value).
struct Run {
    name: String,
    /// Where the run came from, for messages.
    label: String,
    x: Vec<f64>,
    /// (metric, values aligned with `x`; NaN where the line has null or no value).
    columns: Vec<(String, Vec<f64>)>,
    eval: Vec<EvalPoint>,
}

/// One line of eval.jsonl.
struct EvalPoint {
    step: f64,
    accuracy: f64,
    ci95: Option<(f64, f64)>,
}

impl Run {
    fn column(&self, metric: &str) -> Option<&[f64]> {
        self.columns
            .iter()
            .find(|(m, _)| m == metric)
            .map(|(_, v)| v.as_slice())
    }

    fn has_values(&self, metric: &str) -> bool {
        if metric == EVAL {
            return self.eval.iter().any(|e| e.accuracy.is_finite());
        }
        self.column(metric)
            .is_some_and(|v| v.iter().any(|y| y.is_finite()))
    }
}

/// `--smooth` as an EMA weight in [0, 1): a value below 1 is the weight, a span N >= 1 is
/// (N-1)/(N+1).
pub fn smoothing_weight(s: f64) -> Result<f64> {
    if !s.is_finite() || s < 0.0 {
        bail!("--smooth {s}: expected 0 (off), a weight in (0, 1), or a span of N >= 1 steps");
    }
    Ok(if s < 1.0 { s } else { (s - 1.0) / (s + 1.0) })
}

/// Reads one run: RUN/metrics.jsonl, RUN/eval.jsonl if present, RUN/config.json for its name.
fn read_run(path: &Path, x_field: &str) -> Result<Run> {
    // A metrics.jsonl file given directly stands for its directory.
    let (dir, metrics) = if path.is_file() {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (dir, path.to_path_buf())
    } else {
        (path.to_path_buf(), path.join("metrics.jsonl"))
    };
    if !metrics.is_file() {
        bail!(
            "{}/metrics.jsonl not found: is this a training run directory (egi train / egi sft \
             --out)?",
            path.display()
        );
    }
    let lines = read_jsonl(&metrics)?;
    let mut rows: Vec<(f64, Map<String, Value>)> = Vec::with_capacity(lines.len());
    let mut no_x = 0;
    for (n, obj) in lines {
        match obj.get(x_field).and_then(Value::as_f64) {
            Some(x) if x.is_finite() => rows.push((x, obj)),
            _ if x_field == "step" => bail!("{}:{n}: no numeric \"step\"", metrics.display()),
            _ => no_x += 1,
        }
    }
    if no_x > 0 {
        tracing::warn!(
            "{}: {no_x} lines without a numeric {x_field:?} left out",
            metrics.display()
        );
    }
    if rows.is_empty() && no_x > 0 {
        bail!(
            "{}: no line has a numeric {x_field:?} (--x)",
            metrics.display()
        );
    }
    if rows.is_empty() {
        tracing::warn!("{}: no lines yet", metrics.display());
    }
    let rows = last_per_x(rows, &metrics);

    let mut names: Vec<String> = Vec::new();
    for (_, obj) in &rows {
        for (k, v) in obj {
            // Only numbers and nulls make series; strings, lists and objects are not metrics.
            if k != x_field && (v.is_number() || v.is_null()) && !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let columns = names
        .into_iter()
        .map(|k| {
            let col = rows
                .iter()
                .map(|(_, o)| o.get(&k).and_then(Value::as_f64).unwrap_or(f64::NAN))
                .collect();
            (k, col)
        })
        .collect();
    let x = rows.iter().map(|r| r.0).collect();

    let eval_path = dir.join("eval.jsonl");
    let eval = if eval_path.is_file() {
        read_eval(&eval_path)?
    } else {
        Vec::new()
    };
    Ok(Run {
        name: run_name(&dir),
        label: path.display().to_string(),
        x,
        columns,
        eval,
    })
}

/// Non-blank lines parsed as JSON objects, with their line numbers. A malformed line is an
/// error naming the file and line, except a last line without its newline: a run still being
/// written, skipped with a warning.
fn read_jsonl(path: &Path) -> Result<Vec<(usize, Map<String, Value>)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let count = text.lines().count();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => out.push((n, o)),
            Ok(_) => bail!("{}:{n}: expected a JSON object", path.display()),
            Err(_) if n == count && !text.ends_with('\n') => {
                tracing::warn!(
                    "{}:{n}: skipping a partly written last line",
                    path.display()
                );
            }
            Err(e) => bail!("{}:{n}: malformed JSON: {e}", path.display()),
        }
    }
    Ok(out)
}

/// Sorted by x, keeping the last line of each x value: a resumed run logs some steps twice,
/// and the later line is the one the run continued from.
fn last_per_x<T>(mut rows: Vec<(f64, T)>, path: &Path) -> Vec<(f64, T)> {
    rows.sort_by(|a, b| a.0.total_cmp(&b.0)); // stable: equal x keep file order
    let n = rows.len();
    let mut out: Vec<(f64, T)> = Vec::with_capacity(n);
    for r in rows {
        match out.last_mut() {
            Some(last) if last.0 == r.0 => *last = r,
            _ => out.push(r),
        }
    }
    if out.len() < n {
        tracing::warn!(
            "{}: {} repeated steps (resumed run?); keeping the last line of each",
            path.display(),
            n - out.len()
        );
    }
    out
}

/// eval.jsonl: {"step", "accuracy", "ci95": [lo, hi]} per line; accuracy and ci95 may be null.
fn read_eval(path: &Path) -> Result<Vec<EvalPoint>> {
    let mut rows = Vec::new();
    for (n, o) in read_jsonl(path)? {
        let Some(step) = o.get("step").and_then(Value::as_f64) else {
            bail!("{}:{n}: no numeric \"step\"", path.display());
        };
        let acc = o
            .get("accuracy")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN);
        let ci = o.get("ci95").and_then(Value::as_array).and_then(|a| {
            match (a.first()?.as_f64(), a.get(1)?.as_f64()) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => None,
            }
        });
        rows.push((step, (acc, ci)));
    }
    Ok(last_per_x(rows, path)
        .into_iter()
        .map(|(step, (accuracy, ci95))| EvalPoint {
            step,
            accuracy,
            ci95,
        })
        .collect())
}

/// The directory's name, or config.json's "name", with " (algo)" when it names one.
fn run_name(dir: &Path) -> String {
    // `.` and `..` have no file name of their own: ask the absolute path.
    let base = dir
        .file_name()
        .map(|s| s.to_os_string())
        .or_else(|| {
            dir.canonicalize()
                .ok()?
                .file_name()
                .map(|s| s.to_os_string())
        })
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let cfg_path = dir.join("config.json");
    let cfg: Option<Value> = match std::fs::read_to_string(&cfg_path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!("{}: {e}; naming the run {base:?}", cfg_path.display());
                None
            }
        },
        Err(_) => None,
    };
    let field = |k: &str| {
        cfg.as_ref()
            .and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = field("name").unwrap_or(base);
    // The algorithm in brackets only when the name does not already say it ("grpo (grpo)").
    match field("algo") {
        Some(algo)
            if field("name").is_some() && !name.to_lowercase().contains(&algo.to_lowercase()) =>
        {
            format!("{name} ({algo})")
        }
        _ => name,
    }
}

/// Two runs with the same name (e.g. `a/out` and `b/out`) get their paths as names instead.
fn disambiguate(runs: &mut [Run]) {
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    for r in runs.iter_mut() {
        if names.iter().filter(|n| **n == r.name).count() > 1 {
            r.name = format!("{} [{}]", r.name, r.label);
        }
    }
}

/// The panels to draw: `--metrics` as given (checked), or the defaults some run has.
fn choose_metrics(runs: &[Run], asked: Option<&[String]>, any_eval: bool) -> Result<Vec<String>> {
    let mut available: Vec<String> = Vec::new();
    for r in runs {
        for (m, _) in &r.columns {
            if !available.contains(m) {
                available.push(m.clone());
            }
        }
    }
    if any_eval {
        available.push(EVAL.into());
    }
    let has = |m: &str| runs.iter().any(|r| r.has_values(m));
    let asked: Vec<&str> = asked
        .unwrap_or_default()
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if asked.is_empty() {
        let mut out: Vec<String> = DEFAULT_METRICS
            .iter()
            .filter(|m| has(m))
            .map(|m| m.to_string())
            .collect();
        if out.is_empty() {
            // A log with none of the usual names: show everything it has.
            out = available.iter().filter(|m| has(m)).cloned().collect();
        } else if has(EVAL) {
            out.push(EVAL.into());
        }
        return Ok(out);
    }
    if asked == ["all"] {
        return Ok(available.into_iter().filter(|m| has(m)).collect());
    }
    let mut out: Vec<String> = Vec::new();
    for m in asked {
        if !available.iter().any(|a| a == m) {
            bail!(
                "--metrics: unknown metric {m:?}; the runs log: {}",
                if available.is_empty() {
                    "nothing yet".into()
                } else {
                    available.join(", ")
                }
            );
        }
        if !out.iter().any(|o| o == m) {
            out.push(m.to_string());
        }
    }
    Ok(out)
}

fn panel(runs: &[Run], metric: &str) -> Panel {
    let curves = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            if metric == EVAL {
                return (!r.eval.is_empty()).then(|| Curve {
                    run: i,
                    x: r.eval.iter().map(|e| e.step).collect(),
                    y: r.eval.iter().map(|e| e.accuracy).collect(),
                    ci: Some(
                        r.eval
                            .iter()
                            .map(|e| e.ci95.unwrap_or((f64::NAN, f64::NAN)))
                            .collect(),
                    ),
                });
            }
            // Runs without the metric (GRPO has no rho_mean, SFT no reward) get no line.
            let y = r.column(metric)?;
            Some(Curve {
                run: i,
                x: r.x.clone(),
                y: y.to_vec(),
                ci: None,
            })
        })
        .collect();
    Panel {
        name: metric.to_string(),
        curves,
        points: metric == EVAL,
    }
}

/// Long format, one finite value per row; eval intervals as `eval_accuracy_ci95_lo` / `_hi`.
fn to_csv(runs: &[Run], panels: &[Panel], x_field: &str) -> String {
    let mut s = format!("run,{},metric,value\n", csv_field(x_field));
    for p in panels {
        for c in &p.curves {
            let run = csv_field(&runs[c.run].name);
            let metric = csv_field(&p.name);
            for (x, y) in c.x.iter().zip(&c.y).filter(|(_, y)| y.is_finite()) {
                let _ = writeln!(s, "{run},{x},{metric},{y}");
            }
            for (x, (lo, hi)) in c.x.iter().zip(c.ci.iter().flatten()) {
                for (suffix, v) in [("lo", lo), ("hi", hi)] {
                    if v.is_finite() {
                        let m = csv_field(&format!("{}_ci95_{suffix}", p.name));
                        let _ = writeln!(s, "{run},{x},{m},{v}");
                    }
                }
            }
        }
    }
    s
}

/// RFC 4180 quoting, only where needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legends_name_the_algorithm_once() {
        let t = tempfile::tempdir().unwrap();
        let named = |dir: &str, cfg: &str| {
            let d = t.path().join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("config.json"), cfg).unwrap();
            run_name(&d)
        };
        assert_eq!(named("a", r#"{"name": "grpo", "algo": "grpo"}"#), "grpo");
        assert_eq!(
            named("b", r#"{"name": "GRPO seed 1", "algo": "grpo"}"#),
            "GRPO seed 1"
        );
        assert_eq!(
            named("c", r#"{"name": "seed 1", "algo": "corr-po"}"#),
            "seed 1 (corr-po)"
        );
        assert_eq!(named("d", r#"{"algo": "dapo"}"#), "d");
    }

    #[test]
    fn smoothing_weights() {
        assert_eq!(smoothing_weight(0.0).unwrap(), 0.0);
        assert_eq!(smoothing_weight(0.9).unwrap(), 0.9);
        assert_eq!(smoothing_weight(1.0).unwrap(), 0.0);
        assert_eq!(smoothing_weight(19.0).unwrap(), 0.9);
        assert!(smoothing_weight(-1.0).is_err());
        assert!(smoothing_weight(f64::NAN).is_err());
    }

    #[test]
    fn csv_quoting_and_dedup() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b \"c\""), "\"a,b \"\"c\"\"\"");
        let rows = vec![(2.0, 'a'), (1.0, 'b'), (2.0, 'c')];
        assert_eq!(
            last_per_x(rows, Path::new("m")),
            vec![(1.0, 'b'), (2.0, 'c')]
        );
    }
}
