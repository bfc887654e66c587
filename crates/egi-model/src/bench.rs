//! What the machine can do, measured: memory copy bandwidth and matmul rate on a device, the
//! yardsticks `egi bench` puts beside the model's own figures (egi-generate's runtime bench,
//! egi-probe's fingerprint bench).

use std::time::Instant;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};

/// The middle value of `v` (the upper one of an even count). `v` must not be empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Copy bandwidth in GB/s (bytes read + written) of `dev`'s memory, from a 256 MiB buffer:
/// the best of 5 copies.
pub fn copy_bandwidth(dev: &Device) -> Result<f64> {
    let n = 64 << 20; // f32 elements
    let mut best = 0.0f64;
    if dev.is_cpu() {
        let src = vec![1.0f32; n];
        let mut dst = vec![0.0f32; n];
        for _ in 0..5 {
            let t = Instant::now();
            dst.copy_from_slice(&src);
            let s = t.elapsed().as_secs_f64();
            std::hint::black_box(&dst);
            best = best.max(2.0 * (n * 4) as f64 / s / 1e9);
        }
        return Ok(best);
    }
    let src = Tensor::ones(n, DType::F32, dev)?;
    for _ in 0..5 {
        dev.synchronize()?;
        let t = Instant::now();
        let dst = src.copy()?;
        dev.synchronize()?;
        best = best.max(2.0 * (n * 4) as f64 / t.elapsed().as_secs_f64() / 1e9);
        drop(dst);
    }
    Ok(best)
}

/// A measured matrix-multiply rate.
#[derive(Clone, Copy, Debug)]
pub struct MatmulRate {
    /// The side of the square matrices multiplied.
    pub n: usize,
    /// GFLOP/s (2 n^3 per product), the median of 5 products.
    pub gflop_s: f64,
}

/// Matrix-multiply rate on `dev` in `dtype` (n^3 products through candle: 1024 on the CPU,
/// 8192 on a GPU).
pub fn matmul_rate(dev: &Device, dtype: DType) -> Result<MatmulRate> {
    let n = if dev.is_cpu() { 1024 } else { 8192 };
    let a = Tensor::randn(0f32, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    let mut times = vec![];
    for _ in 0..5 {
        dev.synchronize()?;
        let t = Instant::now();
        let c = a.matmul(&b)?;
        dev.synchronize()?;
        times.push(t.elapsed().as_secs_f64());
        drop(c);
    }
    Ok(MatmulRate {
        n,
        gflop_s: 2.0 * (n as f64).powi(3) / median(times) / 1e9,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_upper_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![2.0, 1.0]), 2.0);
        assert_eq!(median(vec![5.0]), 5.0);
    }
}
