//! Benchmark problems: a data set bundled with egi by name ([`crate::bundled`]), or any JSONL /
//! JSON file whose records have a problem ("problem" or "question") and an answer (gold parsed
//! by egi-verify).

use std::borrow::Cow;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::bundled::{self, Bundled};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    pub id: String,
    pub problem: String,
    pub gold: String,
}

/// Where a data set comes from: bundled with egi, or a file of the user's.
#[derive(Debug, Clone)]
pub enum DataSource {
    Bundled(&'static Bundled),
    File(PathBuf),
}

impl DataSource {
    /// How messages and summaries name it: `bundled:gsm8k` or the file's path.
    pub fn label(&self) -> String {
        match self {
            DataSource::Bundled(b) => format!("bundled:{}", b.name),
            DataSource::File(p) => p.display().to_string(),
        }
    }

    /// A short name for ids: the bundled name or the file's stem.
    pub fn stem(&self) -> String {
        match self {
            DataSource::Bundled(b) => b.name.to_string(),
            DataSource::File(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default(),
        }
    }

    /// The whole text.
    pub fn text(&self) -> Result<Cow<'static, str>> {
        match self {
            DataSource::Bundled(b) => Ok(b.text()),
            DataSource::File(p) => std::fs::read_to_string(p)
                .map(Cow::Owned)
                .with_context(|| format!("{}: cannot read", p.display())),
        }
    }

    /// sha256 of the text (hex), recorded in summaries so that a result names its data.
    pub fn sha256(&self) -> Result<String> {
        use sha2::{Digest, Sha256};
        Ok(match self {
            DataSource::Bundled(b) => b.sha256.to_string(),
            DataSource::File(_) => Sha256::digest(self.text()?.as_bytes())
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect(),
        })
    }
}

/// Resolve `spec` to a data set:
/// - a bundled name (`gsm8k`, `math500`, `aime24`, `aime25`, `amc23`, `gsm8k-train`): the copy
///   bundled with egi, or, when `data_dir` is given, the same relative file under it (a user's
///   own copy or revision of the set);
/// - `hf:OWNER/REPO/PATH`: the JSON / JSONL file PATH of a Hugging Face dataset repository
///   (builds with the `hub` feature, online users only);
/// - anything else: a JSONL / JSON file.
pub fn resolve(spec: &str, data_dir: Option<&Path>) -> Result<DataSource> {
    if let Some(b) = bundled::find(spec) {
        return match data_dir {
            None => Ok(DataSource::Bundled(b)),
            Some(dir) => {
                let p = dir.join(b.file);
                if !p.is_file() {
                    bail!(
                        "{}: {spec} not found under --data-dir {}; drop --data-dir to use the copy bundled with egi, or put the file there",
                        p.display(),
                        dir.display()
                    );
                }
                Ok(DataSource::File(p))
            }
        };
    }
    if let Some(id) = spec.strip_prefix("hf:") {
        return hub_file(id).map(DataSource::File);
    }
    let p = PathBuf::from(spec);
    if !p.is_file() {
        bail!(
            "{spec}: neither a bundled data set ({}; see `egi data list`) nor a file",
            bundled::names()
        );
    }
    Ok(DataSource::File(p))
}

#[cfg(feature = "hub")]
fn hub_file(id: &str) -> Result<PathBuf> {
    let mut parts = id.splitn(3, '/');
    let (Some(owner), Some(name), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("hf:{id}: expected hf:OWNER/REPO/PATH, e.g. hf:HuggingFaceH4/MATH-500/test.jsonl");
    };
    let api = hf_hub::api::sync::Api::new()
        .with_context(|| format!("hf:{id}: cannot start the Hugging Face hub client"))?;
    api.dataset(format!("{owner}/{name}"))
        .get(file)
        .with_context(|| {
            format!("hf:{id}: cannot download {file} from dataset {owner}/{name}; check the id, the path and your network")
        })
}

#[cfg(not(feature = "hub"))]
fn hub_file(id: &str) -> Result<PathBuf> {
    bail!(
        "hf:{id}: this egi was built without hub access; download the file and pass its path, \
         or rebuild with `cargo build --release --features hub`"
    )
}

/// Records of a JSONL file or a JSON array; errors name the file and line.
pub fn read_records(path: &Path) -> Result<Vec<Value>> {
    records(&DataSource::File(path.to_path_buf()))
}

/// Records of a data set (JSONL lines or a JSON array); errors name the source and line.
pub fn records(src: &DataSource) -> Result<Vec<Value>> {
    let text = src.text()?;
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", src.label()));
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not valid JSON", src.label(), i + 1))
        })
        .collect()
}

/// Problems of a data set: text from "problem" or "question", gold from egi-verify's record
/// rules, id from "id" / "unique_id" / "idx" or the record index. `limit` keeps the first N.
pub fn load_problems(src: &DataSource, limit: Option<usize>) -> Result<Vec<Problem>> {
    let recs = records(src)?;
    let label = src.label();
    // Where each record sits, for messages: the line of a JSONL file, the index in an array.
    let text = src.text()?;
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
                    label, place[i]
                )
            })?;
        let gold = egi_verify::gold_from_record(r).with_context(|| {
            format!(
                "{}: {} has no usable answer (\"answer\" or a \\boxed solution)",
                label, place[i]
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
        bail!("{}: no problems", label);
    }
    let mut seen = std::collections::HashSet::new();
    for p in &mut out {
        if !seen.insert(p.id.clone()) {
            bail!("{}: duplicate problem id {}", label, p.id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_benchmarks_load_with_golds() {
        for name in bundled::BENCH_NAMES {
            let src = resolve(name, None).unwrap();
            assert_eq!(src.label(), format!("bundled:{name}"));
            let ps = load_problems(&src, None).unwrap();
            assert_eq!(ps.len(), bundled::find(name).unwrap().problems, "{name}");
            assert!(ps
                .iter()
                .all(|p| !p.gold.is_empty() && !p.problem.is_empty()));
        }
        let two = load_problems(&resolve("gsm8k", None).unwrap(), Some(2)).unwrap();
        assert_eq!(
            two[0].gold, "18",
            "GSM8K test's first answer (Janet's ducks)"
        );
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn data_dir_overrides_a_bundled_name_and_a_missing_one_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve("math500", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("math500/test.jsonl") && err.contains("--data-dir"),
            "{err}"
        );
        std::fs::create_dir(dir.path().join("math500")).unwrap();
        let f = dir.path().join("math500/test.jsonl");
        std::fs::write(&f, "{\"problem\": \"1+1?\", \"answer\": \"2\"}\n").unwrap();
        let src = resolve("math500", Some(dir.path())).unwrap();
        assert!(matches!(&src, DataSource::File(p) if *p == f));
        let ps = load_problems(&src, None).unwrap();
        assert_eq!((ps.len(), ps[0].gold.as_str()), (1, "2"));
        // the same text hashes the same whether bundled or a file
        let copy = dir.path().join("aime24.jsonl");
        std::fs::write(&copy, bundled::find("aime24").unwrap().text().as_bytes()).unwrap();
        assert_eq!(
            resolve(copy.to_str().unwrap(), None)
                .unwrap()
                .sha256()
                .unwrap(),
            resolve("aime24", None).unwrap().sha256().unwrap()
        );
    }

    #[test]
    fn unknown_names_and_hub_ids_get_clear_errors() {
        let err = resolve("gsm9k", None).unwrap_err().to_string();
        assert!(
            err.contains("gsm9k") && err.contains("egi data list"),
            "{err}"
        );
        if !cfg!(feature = "hub") {
            let err = resolve("hf:a/b/c.jsonl", None).unwrap_err().to_string();
            assert!(err.contains("--features hub"), "{err}");
        }
    }
}

/// A text to score or fingerprint: `{"id", "prompt", "response"}` (extra fields ignored).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ResponseLine {
    pub id: serde_json::Value,
    pub prompt: String,
    pub response: String,
}

/// Read the texts of a JSONL file, one of two shapes per line (errors name the file and the
/// line): `{"id", "prompt", "response"}`, taken as it is, or `{"id", "problem", "solution"}`
/// (`egi data arith --solutions`, MATH), whose prompt is `template` rendered on the problem
/// (`prompt::render`: boxed, plain, or a text with {problem}), as `egi sft` trains on it.
pub fn read_response_lines(path: &std::path::Path, template: &str) -> Result<Vec<ResponseLine>> {
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut out = vec![];
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: cannot read", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let where_ = || format!("{}:{}", path.display(), i + 1);
        let v: Value =
            serde_json::from_str(&line).with_context(|| format!("{}: not valid JSON", where_()))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str());
        let l = match (field("prompt"), field("response")) {
            (Some(p), Some(r)) => ResponseLine {
                id: v.get("id").cloned().unwrap_or(Value::Null),
                prompt: p.into(),
                response: r.into(),
            },
            _ => match (field("problem"), field("solution")) {
                (Some(p), Some(r)) => ResponseLine {
                    id: v.get("id").cloned().unwrap_or(Value::Null),
                    prompt: crate::prompt::render(template, p)?,
                    response: r.into(),
                },
                _ => bail!(
                    "{}: expected {{\"id\", \"prompt\", \"response\"}} or {{\"id\", \"problem\", \"solution\"}} (egi data arith --solutions)",
                    where_()
                ),
            },
        };
        if l.id.is_null() {
            bail!("{}: no \"id\" field; give each text an id", where_());
        }
        out.push(l);
    }
    if out.is_empty() {
        bail!("{}: no input lines", path.display());
    }
    Ok(out)
}
