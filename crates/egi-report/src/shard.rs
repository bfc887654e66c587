//! Shards of a long run (`--shard K/N`) and the check before they are merged back.
//!
//! Item `i` of the input (0-based, in input order) belongs to shard `i mod N + 1`: a rule
//! each shard applies alone, knowing only its input, that balances the shards to within one
//! item and spreads long and short items alike. A shard's output directory records which
//! shard of which input it holds in `shard.json`, written when the run opens (`finished`:
//! false) and again when it ends; [`check_parts`] reads those before a merge and refuses a
//! missing, duplicated, unfinished or foreign part, naming it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::fs::write_atomic;

/// Shard `k` of `n` (1 <= k <= n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s}: expected K/N with 1 <= K <= N, e.g. 2/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl Shard {
    /// Whether input item `index` (0-based) is this shard's.
    pub fn holds(&self, index: usize) -> bool {
        index % self.n == self.k - 1
    }

    /// This shard's items of `items`, with their input positions.
    pub fn take<T>(&self, items: Vec<T>) -> (Vec<T>, Vec<usize>) {
        let mut kept = vec![];
        let mut at = vec![];
        for (i, t) in items.into_iter().enumerate() {
            if self.holds(i) {
                kept.push(t);
                at.push(i);
            }
        }
        (kept, at)
    }
}

/// `shard.json`: which shard of which input a directory holds, under which settings.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub shard: Shard,
    /// What decides the numbers (model, options, input's sha256, ...): equal across parts.
    pub key: Value,
    /// Items in the whole input.
    pub input_items: usize,
    /// Input positions of this shard's items.
    pub positions: Vec<usize>,
    pub finished: bool,
    /// Whatever the command needs at merge time besides its output files.
    pub extra: Value,
}

pub const MANIFEST: &str = "shard.json";

impl Manifest {
    /// The record of shard `shard`, not finished yet: `key` holds what must be equal across
    /// the parts (model, options, the input's sha256, ...); `input_items` and `positions`
    /// place the shard's items in the input.
    pub fn new(shard: Shard, key: Value, input_items: usize, positions: Vec<usize>) -> Self {
        Manifest {
            shard,
            key,
            input_items,
            positions,
            finished: false,
            extra: Value::Null,
        }
    }

    /// Records in `dir` that the shard finished, with what its merge needs (`extra`).
    pub fn finish(mut self, dir: &Path, extra: Value) -> Result<()> {
        self.finished = true;
        self.extra = extra;
        self.write(dir)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let v = json!({
            "shard": self.shard.to_string(), "k": self.shard.k, "n": self.shard.n,
            "finished": self.finished, "input_items": self.input_items, "key": self.key,
            "positions": self.positions, "extra": self.extra,
        });
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        write_atomic(
            &dir.join(MANIFEST),
            serde_json::to_string_pretty(&v)?.as_bytes(),
        )
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: not a shard's output (no {MANIFEST}): give the --out of runs made with --shard K/N",
                dir.display()
            )
        })?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", path.display()))?;
        let field = |k: &str| {
            v.get(k)
                .with_context(|| format!("{}: field \"{k}\" is missing", path.display()))
        };
        let shard: Shard = field("shard")?
            .as_str()
            .unwrap_or("")
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: field \"shard\": {e}", path.display()))?;
        let positions = serde_json::from_value(field("positions")?.clone())
            .with_context(|| format!("{}: field \"positions\"", path.display()))?;
        Ok(Manifest {
            shard,
            key: field("key")?.clone(),
            input_items: field("input_items")?.as_u64().unwrap_or(0) as usize,
            positions,
            finished: field("finished")?.as_bool().unwrap_or(false),
            extra: v.get("extra").cloned().unwrap_or(Value::Null),
        })
    }
}

/// Reads the parts of a sharded run and checks that they merge into exactly one whole: the
/// same key and N, every shard 1..=N once, each finished, positions covering the input once.
/// Returns them in shard order. `rerun` says how to finish a shard (the command's name).
pub fn check_parts(dirs: &[PathBuf], rerun: &str) -> Result<Vec<(PathBuf, Manifest)>> {
    if dirs.is_empty() {
        bail!("give the shards' output directories");
    }
    let mut parts = dirs
        .iter()
        .map(|d| Ok((d.clone(), Manifest::read(d)?)))
        .collect::<Result<Vec<_>>>()?;
    let (d0, m0) = parts[0].clone();
    for (d, m) in &parts[1..] {
        if m.shard.n != m0.shard.n {
            bail!(
                "{} holds shard {} but {} holds shard {}: parts of one run share N",
                d.display(),
                m.shard,
                d0.display(),
                m0.shard
            );
        }
        if m.key != m0.key || m.input_items != m0.input_items {
            bail!(
                "{} (shard {}) is not a part of the same run as {} (shard {}): {}",
                d.display(),
                m.shard,
                d0.display(),
                m0.shard,
                first_difference(&m0.key, &m.key)
                    .unwrap_or_else(|| "the input's size differs".into())
            );
        }
    }
    parts.sort_by_key(|(_, m)| m.shard.k);
    for w in parts.windows(2) {
        if w[0].1.shard.k == w[1].1.shard.k {
            bail!(
                "shard {} is given twice: {} and {}",
                w[0].1.shard,
                w[0].0.display(),
                w[1].0.display()
            );
        }
    }
    let n = m0.shard.n;
    let missing: Vec<String> = (1..=n)
        .filter(|k| !parts.iter().any(|(_, m)| m.shard.k == *k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    let unfinished: Vec<String> = parts
        .iter()
        .filter(|(_, m)| !m.finished)
        .map(|(d, m)| format!("{} ({})", m.shard, d.display()))
        .collect();
    if !missing.is_empty() || !unfinished.is_empty() {
        let mut why = vec![];
        if !missing.is_empty() {
            why.push(format!("missing shard {}", missing.join(", ")));
        }
        if !unfinished.is_empty() {
            why.push(format!(
                "not finished: {} (rerun its {rerun} command: it resumes)",
                unfinished.join(", ")
            ));
        }
        bail!("nothing merged: {}", why.join("; "));
    }
    let mut seen = vec![false; m0.input_items];
    for (d, m) in &parts {
        for &p in &m.positions {
            if p >= seen.len() || seen[p] || !m.shard.holds(p) {
                bail!(
                    "{}: shard {} lists input item {p}, which is not its own",
                    d.display(),
                    m.shard
                );
            }
            seen[p] = true;
        }
    }
    if let Some(p) = seen.iter().position(|s| !s) {
        bail!("input item {p} is in no shard: were the shards run on the same input?");
    }
    Ok(parts)
}

/// The JSON lines of a part's output file (`responses.jsonl`, `samples.jsonl`).
pub fn part_lines(dir: &Path, file: &str) -> Result<Vec<Value>> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not valid JSON", path.display(), i + 1))
        })
        .collect()
}

/// The first key (dotted path) whose values differ, with both values.
fn first_difference(a: &Value, b: &Value) -> Option<String> {
    fn walk(a: &Value, b: &Value, path: &str) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter().find_map(|k| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        &p,
                    )
                })
            }
            _ if a == b => None,
            _ => Some(format!("{path} is {b} there, {a} here")),
        }
    }
    walk(a, b, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_input() {
        for n in 1..9 {
            let shards: Vec<Shard> = (1..=n).map(|k| Shard { k, n }).collect();
            for i in 0..50 {
                assert_eq!(shards.iter().filter(|s| s.holds(i)).count(), 1);
            }
            let sizes: Vec<usize> = shards
                .iter()
                .map(|s| s.take((0..50).collect()).0.len())
                .collect();
            assert!(
                sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
                "{sizes:?}"
            );
        }
        assert_eq!(
            Shard { k: 2, n: 3 }.take(vec!['a', 'b', 'c', 'd', 'e']),
            (vec!['b', 'e'], vec![1, 4])
        );
    }

    #[test]
    fn shard_flag_is_parsed_or_explained() {
        assert_eq!("3/7".parse::<Shard>().unwrap(), Shard { k: 3, n: 7 });
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("expected K/N"), "{e}");
        }
    }

    fn part(dir: &Path, k: usize, n: usize, items: usize, key: Value, finished: bool) -> PathBuf {
        let d = dir.join(format!("part{k}"));
        let s = Shard { k, n };
        Manifest {
            shard: s,
            key,
            input_items: items,
            positions: s.take((0..items).collect()).1,
            finished,
            extra: Value::Null,
        }
        .write(&d)
        .unwrap();
        d
    }

    #[test]
    fn parts_are_checked_before_a_merge() {
        let t = tempfile::tempdir().unwrap();
        let key = json!({"model": "m", "options": {"norm": "nuclear"}});
        let a = part(t.path(), 1, 3, 7, key.clone(), true);
        let b = part(t.path(), 2, 3, 7, key.clone(), true);
        let c = part(t.path(), 3, 3, 7, key.clone(), true);
        let ok = check_parts(&[c.clone(), a.clone(), b.clone()], "egi fingerprint").unwrap();
        assert_eq!(
            ok.iter().map(|(_, m)| m.shard.k).collect::<Vec<_>>(),
            [1, 2, 3]
        );

        let e = check_parts(&[a.clone(), c.clone()], "egi fingerprint")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "nothing merged: missing shard 2/3");
        let e = check_parts(&[a.clone(), a.clone(), c.clone()], "x")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("shard 1/3 is given twice"), "{e}");
        let u = part(&t.path().join("u"), 2, 3, 7, key.clone(), false);
        let e = check_parts(&[a.clone(), u, c.clone()], "egi fingerprint")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not finished: 2/3") && e.contains("rerun its egi fingerprint command"),
            "{e}"
        );
        let f = part(
            &t.path().join("f"),
            2,
            3,
            7,
            json!({"model": "m", "options": {"norm": "frobenius"}}),
            true,
        );
        let e = check_parts(&[a.clone(), f, c.clone()], "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("options.norm is \"frobenius\" there, \"nuclear\" here"),
            "{e}"
        );
        let g = part(&t.path().join("g"), 2, 4, 7, key, true);
        let e = check_parts(&[a, g], "x").unwrap_err().to_string();
        assert!(e.contains("shard 2/4") && e.contains("share N"), "{e}");
        let e = check_parts(&[t.path().to_path_buf()], "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a shard's output (no shard.json)"), "{e}");
    }
}
