//! Benchmark problems: the data sets of ../shared/data by name, or any JSONL / JSON file whose
//! records have a problem ("problem" or "question") and an answer (gold parsed by egi-verify).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    pub id: String,
    pub problem: String,
    pub gold: String,
}

/// Named benchmarks and their files under the data directory.
pub const BENCHES: [(&str, &str); 5] = [
    ("gsm8k", "gsm8k/test.jsonl"),
    ("math500", "math500/test.jsonl"),
    ("aime24", "aime24/test.jsonl"),
    ("amc23", "amc23/test.jsonl"),
    ("aime25", "aime25/test.jsonl"),
];

/// Resolve `bench` (a name above, or a path) to a file.
pub fn bench_file(bench: &str, data_dir: &Path) -> Result<PathBuf> {
    if let Some((_, rel)) = BENCHES.iter().find(|(n, _)| *n == bench) {
        let p = data_dir.join(rel);
        if !p.is_file() {
            bail!(
                "{}: benchmark {bench} not found; set --data-dir to the folder holding gsm8k/, math500/, ... (default ../shared/data)",
                p.display()
            );
        }
        return Ok(p);
    }
    let p = PathBuf::from(bench);
    if !p.is_file() {
        let names: Vec<&str> = BENCHES.iter().map(|(n, _)| *n).collect();
        bail!(
            "{bench}: neither a benchmark name ({}) nor a file",
            names.join(", ")
        );
    }
    Ok(p)
}

/// Records of a JSONL file or a JSON array; errors name the file and line.
pub fn read_records(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", path.display()));
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not valid JSON", path.display(), i + 1))
        })
        .collect()
}

/// Problems of a file: text from "problem" or "question", gold from egi-verify's record rules,
/// id from "id" / "unique_id" / "idx" or the record index. `limit` keeps the first N.
pub fn load_problems(path: &Path, limit: Option<usize>) -> Result<Vec<Problem>> {
    let recs = read_records(path)?;
    // Where each record sits, for messages: the line of a JSONL file, the index in an array.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let place: Vec<String> = if text.trim_start().starts_with('[') {
        (1..=recs.len()).map(|i| format!("record {i}")).collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, _)| format!("line {}", i + 1))
            .collect()
    };
    let mut out = vec![];
    for (i, r) in recs.iter().enumerate().take(limit.unwrap_or(usize::MAX)) {
        let problem = ["problem", "question"]
            .iter()
            .find_map(|k| r.get(*k).and_then(|v| v.as_str()))
            .with_context(|| {
                format!(
                    "{}: {} has no \"problem\" or \"question\" field",
                    path.display(),
                    place[i]
                )
            })?;
        let gold = egi_verify::gold_from_record(r).with_context(|| {
            format!(
                "{}: {} has no usable answer (\"answer\" or a \\boxed solution)",
                path.display(),
                place[i]
            )
        })?;
        let id = ["id", "unique_id", "idx"]
            .iter()
            .find_map(|k| {
                r.get(*k).map(|v| {
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                })
            })
            .unwrap_or_else(|| i.to_string());
        out.push(Problem {
            id,
            problem: problem.to_string(),
            gold,
        });
    }
    if out.is_empty() {
        bail!("{}: no problems", path.display());
    }
    let mut seen = std::collections::HashSet::new();
    for p in &mut out {
        if !seen.insert(p.id.clone()) {
            bail!("{}: duplicate problem id {}", path.display(), p.id);
        }
    }
    Ok(out)
}
