//! Where egi computes and in which precision: what `--device` and `--dtype` name.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};

/// `cpu`, `cuda`, `cuda:N`, or `auto` (the first GPU when this build has CUDA and the machine
/// a GPU, else the CPU).
pub fn select_device(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    if spec == "auto" {
        if !cfg!(feature = "cuda") {
            return Ok(Device::Cpu);
        }
        return Ok(match Device::new_cuda(0) {
            Ok(d) => d,
            Err(e) => {
                tracing::info!("no usable GPU ({e}); computing on the CPU");
                Device::Cpu
            }
        });
    }
    let ordinal = match spec.strip_prefix("cuda") {
        Some("") => 0,
        Some(n) => n
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .with_context(|| format!("--device {spec}: expected cuda:N with N a GPU index"))?,
        None => bail!("--device {spec}: expected cpu, cuda, cuda:N or auto"),
    };
    if !cfg!(feature = "cuda") {
        bail!(
            "--device {spec}: this egi was built without CUDA; rebuild with `--features cuda` \
             (docs/gpu.md) or use --device cpu"
        );
    }
    Device::new_cuda(ordinal).with_context(|| {
        format!("--device {spec}: cannot open GPU {ordinal} (NVIDIA driver and CUDA libraries: docs/gpu.md)")
    })
}

/// `f32` or `bf16` (weights and activations; norms, entropies and statistics stay in f32 or
/// f64 whatever this is).
pub fn parse_dtype(spec: &str) -> Result<DType> {
    match spec.trim() {
        "f32" => Ok(DType::F32),
        "bf16" => Ok(DType::BF16),
        other => bail!("--dtype {other}: expected f32 or bf16"),
    }
}

/// A short name for logs and reports: `cpu`, `cuda:0`.
pub fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => match d.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            _ => "cuda".into(),
        },
        _ => format!("{:?}", d.location()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_or_explain() {
        assert!(select_device("cpu").unwrap().is_cpu());
        // Without a GPU (CI) `auto` is the CPU; with one it must still open something.
        let auto = select_device("auto").unwrap();
        if !cfg!(feature = "cuda") {
            assert!(auto.is_cpu());
        }
        for bad in ["gpu", "cuda:", "cuda:x", "cuda0"] {
            let e = select_device(bad).unwrap_err().to_string();
            assert!(e.contains("--device"), "{bad}: {e}");
        }
        if !cfg!(feature = "cuda") {
            let e = select_device("cuda:1").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        assert_eq!(parse_dtype("f32").unwrap(), DType::F32);
        assert!(parse_dtype("f16")
            .unwrap_err()
            .to_string()
            .contains("f32 or bf16"));
        assert_eq!(device_name(&Device::Cpu), "cpu");
    }
}
