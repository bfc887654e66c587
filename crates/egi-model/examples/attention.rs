//! The training pass's attention on a packed group of the default model's shape (9 query
//! heads, 3 kv heads, head dim 64; a prompt of 80 tokens and 4 responses of 63): candle's
//! ops against the fused kernels, forward and backward, alternated in one process so that
//! the machine's drift hits both alike; medians of 15 rounds.
//! cargo run --release -p egi-model --example attention
use candle_core::{DType, Device, Tensor};
use egi_model::{fastops, AttnInput};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    egi_model::alloc::keep_freed_memory(); // as the egi binary does
    let d = Device::Cpu;
    let (nh, nkv, hd) = (9usize, 3usize, 64usize);
    let n_rep = nh / nkv;
    let (prefix, blocks) = (80usize, [63usize; 4]);
    let t = prefix + blocks.iter().sum::<usize>();
    let mask = AttnInput::packed(prefix, &blocks, DType::F32, &d)?
        .mask
        .reshape((t, t))?;
    let r = |s: &[usize]| Tensor::randn(0f32, 1.0, s, &d);
    let (qr, kr, v) = (r(&[nh, t, hd])?, r(&[nkv, t, hd])?, r(&[nkv, t, hd])?);
    let dctx = r(&[t, nh * hd])?;
    let (cos, sin) = (r(&[t, hd])?, r(&[t, hd])?);
    let scale = 1.0 / (hd as f64).sqrt();
    let candle_fwd = || -> anyhow::Result<(Tensor, Tensor)> {
        let raw = qr
            .reshape((nkv, n_rep * t, hd))?
            .matmul(&kr.t()?)?
            .reshape((nh, t, t))?;
        let p = fastops::masked_softmax(&raw, &mask, scale)?.unwrap();
        let ctx = p
            .reshape((nkv, n_rep * t, t))?
            .matmul(&v)?
            .reshape((nh, t, hd))?
            .transpose(0, 1)?
            .reshape((t, nh * hd))?;
        Ok((p, ctx))
    };
    let (p, _) = candle_fwd()?;
    let candle_bwd = || -> anyhow::Result<Tensor> {
        let pg = p.reshape((nkv, n_rep * t, t))?;
        let dg = dctx
            .reshape((t, nh, hd))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((nkv, n_rep * t, hd))?;
        let dp = dg.matmul(&v.t()?)?;
        let dv = pg.t()?.matmul(&dg)?;
        let ds = fastops::softmax_bwd(&pg, &dp, scale)?.unwrap();
        let dqr = ds.matmul(&kr)?.reshape((nh, t, hd))?;
        let dkr = ds.t()?.matmul(&qr.reshape((nkv, n_rep * t, hd))?)?;
        let dq = egi_model::pass::rope_heads_bwd(&dqr, &cos, &sin)?;
        let dk = egi_model::pass::rope_heads_bwd(&dkr, &cos, &sin)?;
        Ok((dq.sum_all()? + dk.sum_all()? + dv.sum_all()?)?)
    };
    let fused_fwd = || fastops::attention_fwd(&qr, &kr, &v, &mask, scale);
    let fused_bwd = || fastops::attention_bwd(&p, &qr, &kr, &v, &dctx, &[t], &cos, &sin, scale);
    let mut times = [vec![], vec![], vec![], vec![]];
    for _ in 0..15 {
        let t0 = Instant::now();
        std::hint::black_box(candle_fwd()?);
        let t1 = Instant::now();
        std::hint::black_box(fused_fwd()?);
        let t2 = Instant::now();
        std::hint::black_box(candle_bwd()?);
        let t3 = Instant::now();
        std::hint::black_box(fused_bwd()?);
        let t4 = Instant::now();
        for (v, (a, b)) in times
            .iter_mut()
            .zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4)])
        {
            v.push((b - a).as_secs_f64() * 1e3);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let m: Vec<f64> = times.iter_mut().map(med).collect();
    println!("one layer, T = {t}: median ms of 15 alternated rounds");
    println!("| | candle ops | fused | ratio |\n|---|---|---|---|");
    println!(
        "| forward | {:.2} | {:.2} | {:.2} |",
        m[0],
        m[1],
        m[1] / m[0]
    );
    println!(
        "| backward | {:.2} | {:.2} | {:.2} |",
        m[2],
        m[3],
        m[3] / m[2]
    );
    Ok(())
}
