use candle_core::{Device, Tensor};
use std::time::Instant;
fn main() -> anyhow::Result<()> {
    let d = Device::Cpu;
    for (o, i) in [(1536usize, 576usize), (576, 1536), (49152, 576)] {
        let w = Tensor::randn(0f32, 1.0, (o, i), &d)?;
        for m in [1usize, 16] {
            let x = Tensor::randn(0f32, 1.0, (m, i), &d)?;
            let bench = |f: &dyn Fn() -> anyhow::Result<Tensor>| {
                let _ = f();
                let n = 200;
                let t = Instant::now();
                for _ in 0..n {
                    std::hint::black_box(f().unwrap());
                }
                let s = t.elapsed().as_secs_f64() / n as f64;
                (o * i * 4) as f64 / s / 1e9
            };
            let a = bench(&|| Ok(x.matmul(&w.t()?)?));
            let b = bench(&|| Ok(egi_model::kernels::small_matmul_t(&x, &w)?.unwrap()));
            println!("{o}x{i} m={m}: gemm {a:.1} GB/s, kernel {b:.1}");
        }
    }
    Ok(())
}
