//! One owner per output directory: a command that writes a directory it may later resume
//! holds an exclusive OS lock on `DIR/.egi.lock` for its whole run. The lock is the kernel's
//! (flock), so it goes with the process, crash or kill -9 included: never a stale lock.
//! The file also says who holds it, for the error the next process prints.

use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

pub const LOCK_FILE: &str = ".egi.lock";

/// Held for the life of the command; dropping it (or the process ending) releases the lock.
pub struct DirLock {
    _file: std::fs::File,
}

/// Take `dir` (created if missing) for this process, or fail at once naming the holder.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("{}: cannot open the lock file", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            bail!(
                "{}: another egi process is using this directory ({}); wait for it to finish \
                 or stop it, or choose another --out",
                dir.display(),
                describe_holder(&text)
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("{}: cannot lock", path.display()));
        }
    }
    let holder = serde_json::json!({
        "pid": std::process::id(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "started": utc_now(),
    });
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{holder}").with_context(|| format!("{}: cannot write", path.display()))?;
    file.flush()?;
    Ok(DirLock { _file: file })
}

/// "pid 123, `egi train --out run`, started 2026-12-03 13:20:01 UTC".
fn describe_holder(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(v) => format!(
            "pid {}, `{}`, started {}",
            v["pid"],
            v["command"].as_str().unwrap_or("?"),
            v["started"].as_str().unwrap_or("?")
        ),
        Err(_) => "its details are not written yet".into(),
    }
}

/// The current time as "YYYY-MM-DD HH:MM:SS UTC" (the chat templates' strftime).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    egi_model::chat::strftime_utc("%Y-%m-%d %H:%M:%S UTC", secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_the_same_process_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path()).unwrap();
        let err = lock_dir(dir.path()).err().unwrap().to_string();
        assert!(err.contains("another egi process"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        lock_dir(dir.path()).unwrap();
    }

    #[test]
    fn the_date_is_a_real_date() {
        let s = utc_now();
        assert!(
            s.starts_with("20") && s.ends_with(" UTC") && s.len() == 23,
            "{s}"
        );
    }
}
