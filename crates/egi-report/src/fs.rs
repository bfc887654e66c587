//! Writing outputs: every file egi produces goes through [`write_atomic`]; a long run's
//! finished records go through [`PartialRows`] until its final outputs are written.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Write `bytes` to `path` through a temporary file in the same directory, synced, then a
/// rename: a crash or a reader never sees a half-written output. Missing parent folders are
/// created. The file is readable by all (0644 on Unix, like any other output; tempfile's
/// own default is 0600).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".egi-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot write here", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("{}: cannot move the output into place", path.display()))?;
    Ok(())
}

/// Crash-safe progress of a long run: finished records are appended, one JSON line each, to
/// `<dir>/<stem>.partial.jsonl`, beside `<dir>/<stem>.key.partial.json` holding the settings
/// they were made with. Opening again resumes (same settings) or refuses (other settings,
/// unless `fresh`); a torn last line from a crash is dropped.
pub struct PartialRows {
    file: std::fs::File,
    path: PathBuf,
    key_path: PathBuf,
}

impl PartialRows {
    /// Returns the checkpoint and the records already done.
    pub fn open(
        dir: &Path,
        stem: &str,
        key: &serde_json::Value,
        fresh: bool,
    ) -> Result<(PartialRows, Vec<serde_json::Value>)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let path = dir.join(format!("{stem}.partial.jsonl"));
        let key_path = dir.join(format!("{stem}.key.partial.json"));
        if fresh {
            let _ = std::fs::remove_file(&path);
        }
        let mut done = vec![];
        if path.exists() {
            let prev: serde_json::Value = std::fs::read_to_string(&key_path)
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(serde_json::Value::Null);
            if &prev != key {
                bail!(
                    "{}: an interrupted run with other settings is here; rerun with --fresh to discard it, or use another --out",
                    dir.display()
                );
            }
            for (i, l) in std::fs::read_to_string(&path)?.lines().enumerate() {
                match serde_json::from_str(l) {
                    Ok(v) => done.push(v),
                    Err(_) => tracing::warn!(
                        "{}:{}: incomplete line dropped (interrupted write)",
                        path.display(),
                        i + 1
                    ),
                }
            }
        }
        write_atomic(&key_path, serde_json::to_string_pretty(key)?.as_bytes())?;
        // Rewrite without any torn line, then append from there.
        let text: String = done.iter().map(|v| format!("{v}\n")).collect();
        write_atomic(&path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new().append(true).open(&path)?;
        Ok((
            PartialRows {
                file,
                path,
                key_path,
            },
            done,
        ))
    }

    /// Replace the file by exactly these records (e.g. to drop incomplete groups), then keep
    /// appending to it.
    pub fn rewrite(&mut self, records: &[serde_json::Value]) -> Result<()> {
        let text: String = records.iter().map(|v| format!("{v}\n")).collect();
        write_atomic(&self.path, text.as_bytes())?;
        self.file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }

    /// Append records and flush them to disk.
    pub fn append(&mut self, records: &[serde_json::Value]) -> Result<()> {
        let text: String = records.iter().map(|v| format!("{v}\n")).collect();
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.flush())
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }

    /// The run is complete: its final outputs are written, the checkpoint goes.
    pub fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.key_path);
    }
}

/// `complete.json` in an output folder: the key (input and options) of the finished run
/// whose outputs the folder holds, so that the same command run again can say so and stop
/// instead of recomputing what is there.
pub const COMPLETE: &str = "complete.json";

/// Whether `dir` holds the finished outputs of a run with `key` (and each of `outputs`).
pub fn completed_with(dir: &Path, key: &serde_json::Value, outputs: &[&str]) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(COMPLETE)) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| &v == key)
        && outputs.iter().all(|o| dir.join(o).is_file())
}

/// Records that `dir` now holds the finished outputs of the run with `key`.
pub fn mark_complete(dir: &Path, key: &serde_json::Value) -> Result<()> {
    write_atomic(
        &dir.join(COMPLETE),
        serde_json::to_string_pretty(key)?.as_bytes(),
    )
}

/// Forgets a finished run's record (its outputs are about to be replaced).
pub fn clear_complete(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(COMPLETE));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_readable_by_all_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/out.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
}
