//! Hand-written matrix-vector kernel for decoding.
//!
//! Decoding multiplies a handful of rows (one per sequence in the batch) by every weight
//! matrix; the time is the time to stream the weights from memory once. gemm (via candle) is
//! tuned for large products and reaches about half the machine's bandwidth on this shape, so
//! this kernel (dot products of each weight row with every input row, rows split across
//! threads, AVX2/FMA when the CPU has it) does it instead. Inference path only: it records no
//! backward. Checked against candle's matmul in the tests below.

use anyhow::Result;
use candle_core::{CpuStorage, DType, Storage, Tensor};
use rayon::prelude::*;

use crate::view::f32s;

/// Largest number of input rows routed here; more rows are compute-bound, gemm's job.
pub const MAX_ROWS: usize = 16;

/// `x [m, in] @ w[out, in]^T` for m <= MAX_ROWS, both f32 contiguous on the CPU; `None` when
/// the inputs do not qualify (the caller then uses candle's matmul).
pub fn small_matmul_t(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    let Some(mut ys) = small_matmul_t_multi(x, &[w])? else {
        return Ok(None);
    };
    let (m, _) = x.dims2()?;
    Ok(Some(Tensor::from_vec(
        ys.remove(0),
        (m, w.dim(0)?),
        x.device(),
    )?))
}

/// Several weight matrices applied to the same input in one parallel pass (q, k, v; or gate
/// and up): one thread dispatch instead of one per matrix. Returns each product row-major
/// ([m, out_i]) as a plain vector.
pub fn small_matmul_t_multi(x: &Tensor, ws: &[&Tensor]) -> Result<Option<Vec<Vec<f32>>>> {
    multi_impl(x, ws, has_avx512())
}

/// `use_avx512` is a parameter so that tests on AVX-512 machines also cover the AVX2 path.
fn multi_impl(x: &Tensor, ws: &[&Tensor], use_avx512: bool) -> Result<Option<Vec<Vec<f32>>>> {
    let (m, k) = x.dims2()?;
    if m > MAX_ROWS || x.dtype() != DType::F32 {
        return Ok(None);
    }
    for w in ws {
        if w.dims2()?.1 != k || w.dtype() != DType::F32 {
            return Ok(None);
        }
    }
    let Some(xg) = f32s(x) else {
        return Ok(None);
    };
    let xv: &[f32] = &xg;
    let mut guards = Vec::with_capacity(ws.len());
    for w in ws {
        match f32s(w) {
            Some(v) => guards.push(v),
            None => return Ok(None),
        }
    }
    let wvs: Vec<&[f32]> = guards.iter().map(|g| &g[..]).collect();
    // Tasks of up to CHUNK weight rows, never straddling two matrices.
    const CHUNK: usize = 64;
    let mut tasks = vec![];
    for (i, w) in wvs.iter().enumerate() {
        let out = w.len() / k;
        for o0 in (0..out).step_by(CHUNK) {
            tasks.push((i, o0, CHUNK.min(out - o0)));
        }
    }
    // Each task's output transposed ([rows, m]): contiguous per task.
    let blocks: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(i, o0, rows)| {
            let wv = wvs[i];
            let mut block = vec![0f32; rows * m];
            if use_avx512 {
                // SAFETY: the caller checked that the CPU supports AVX-512F.
                unsafe { block_avx512(&wv[o0 * k..(o0 + rows) * k], xv, k, m, &mut block) };
                return block;
            }
            let mut j = 0;
            // Few input rows: four weight rows per pass instead, so that four independent FMA
            // chains hide the FMA latency (one chain per row keeps each row's summation order).
            if m < 4 {
                while j + 4 <= rows {
                    let w4 = &wv[(o0 + j) * k..(o0 + j + 4) * k];
                    for r in 0..m {
                        let Some(d) = four_row_dots(w4, &xv[r * k..(r + 1) * k], k) else {
                            break;
                        };
                        for (q, dq) in d.iter().enumerate() {
                            block[(j + q) * m + r] = *dq;
                        }
                    }
                    if !has_avx2() {
                        break;
                    }
                    j += 4;
                }
            }
            // Two weight rows per pass where possible: every loaded input vector then feeds
            // two products (decoding with several sequences is compute-bound here).
            while j + 2 <= rows {
                let w2 = &wv[(o0 + j) * k..(o0 + j + 2) * k];
                let (y0, y1) = block[j * m..(j + 2) * m].split_at_mut(m);
                if !row_pair_dots(w2, xv, k, y0, y1) {
                    row_dots(&w2[..k], xv, k, y0);
                    row_dots(&w2[k..], xv, k, y1);
                }
                j += 2;
            }
            if j < rows {
                let wrow = &wv[(o0 + j) * k..(o0 + j + 1) * k];
                row_dots(wrow, xv, k, &mut block[j * m..(j + 1) * m]);
            }
            block
        })
        .collect();
    let mut ys: Vec<Vec<f32>> = wvs.iter().map(|w| vec![0f32; m * (w.len() / k)]).collect();
    for (&(i, o0, rows), block) in tasks.iter().zip(&blocks) {
        let out = wvs[i].len() / k;
        for j in 0..rows {
            for r in 0..m {
                ys[i][r * out + o0 + j] = block[j * m + r];
            }
        }
    }
    Ok(Some(ys))
}

/// Attention of one new token per sequence against its cached keys and values, for decoding.
/// `q`: [B, n_heads, 1, hd] contiguous; `k`, `v`: [B, n_kv, S, hd] (views into the cache:
/// any strides, contiguous head dim); `mask`: [B, 1, 1, S] additive. Returns [B, n_heads, 1, hd].
/// One pass per (sequence, head) instead of candle's per-head gemm calls, softmax and copies,
/// which cost more than the arithmetic at this size. `None` when the inputs do not qualify.
pub fn decode_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f32,
) -> Result<Option<Tensor>> {
    let (b, nh, t, hd) = q.dims4()?;
    let (_, nkv, s, _) = k.dims4()?;
    if t != 1 || q.dtype() != DType::F32 || k.dtype() != DType::F32 || v.dtype() != DType::F32 {
        return Ok(None);
    }
    let mask = mask.to_dtype(DType::F32)?.contiguous()?;
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (ms, ml) = mask.storage_and_layout();
    fn raw(st: &Storage) -> Option<&[f32]> {
        match st {
            Storage::Cpu(CpuStorage::F32(x)) => Some(x.as_slice()),
            _ => None,
        }
    }
    let (Some(qv), Some(kv), Some(vv), Some(mv)) = (raw(&qs), raw(&ks), raw(&vs), raw(&ms)) else {
        return Ok(None);
    };
    if !ql.is_contiguous()
        || kl.stride()[3] != 1
        || vl.stride()[3] != 1
        || mask.elem_count() != b * s
    {
        return Ok(None);
    }
    let (q0, k0, v0, m0) = (
        ql.start_offset(),
        kl.start_offset(),
        vl.start_offset(),
        ml.start_offset(),
    );
    let (kst, vst) = (kl.stride().to_vec(), vl.stride().to_vec());
    let n_rep = nh / nkv;
    if n_rep > 16 {
        return Ok(None);
    }
    let mut out = vec![0f32; b * nh * hd];
    // One task per (sequence, kv head): the n_rep query heads that share the kv head read
    // each cached key and value row once instead of n_rep times: reading the cache is what
    // this costs, so it runs in parallel.
    out.par_chunks_mut(n_rep * hd).enumerate().for_each_init(
        || vec![0f32; n_rep * s],
        |scores, (i, o)| {
            let (bi, g) = (i / nkv, i % nkv);
            let kb = k0 + bi * kst[0] + g * kst[1];
            let vb = v0 + bi * vst[0] + g * vst[1];
            let mrow = &mv[m0 + bi * s..m0 + (bi + 1) * s];
            let qb = q0 + (bi * nh + g * n_rep) * hd;
            // Plain loops over rows of hd, compiled for AVX-512 where available.
            simd!({
                for j in 0..s {
                    let kr = &kv[kb + j * kst[2]..kb + j * kst[2] + hd];
                    for r in 0..n_rep {
                        let qr = &qv[qb + r * hd..qb + (r + 1) * hd];
                        scores[r * s + j] = crate::fastops::dot(qr, kr) * scale + mrow[j];
                    }
                }
                let mut inv = [0f32; 16];
                for (r, row) in scores.chunks_mut(s).enumerate() {
                    let mx = crate::fastops::max(row);
                    for sc in row.iter_mut() {
                        *sc = crate::fastops::exp(*sc - mx);
                    }
                    inv[r] = 1.0 / crate::fastops::sum(row);
                }
                for j in 0..s {
                    let vr = &vv[vb + j * vst[2]..vb + j * vst[2] + hd];
                    for r in 0..n_rep {
                        let p = scores[r * s + j];
                        if p == 0.0 {
                            continue; // masked (padding) key
                        }
                        let w = p * inv[r];
                        for (od, &x) in o[r * hd..(r + 1) * hd].iter_mut().zip(vr) {
                            *od += w * x;
                        }
                    }
                }
            })
        },
    );
    drop((qs, ks, vs, ms));
    Ok(Some(Tensor::from_vec(out, (b, nh, 1, hd), q.device())?))
}

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn block_avx512(_: &[f32], _: &[f32], _: usize, _: usize, _: &mut [f32]) {
    unreachable!()
}

/// AVX-512 path for a block of weight rows `w` ([rows, k]) against all `m` input rows,
/// writing `block[j * m + r]`. Register tiles of 4 weight rows x 4 input rows (16
/// accumulators of 16 lanes); every (weight row, input row) pair is summed the same way in
/// every tile shape (one 16-lane accumulator over the row in order, lanes added by one fixed
/// tree, then the scalar tail), so a row's result does not depend on the batch it is decoded
/// in.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block_avx512(w: &[f32], x: &[f32], k: usize, m: usize, block: &mut [f32]) {
    use std::arch::x86_64::*;
    let rows = w.len() / k;
    let kk = k - k % 16;
    let pw = w.as_ptr();
    let px = x.as_ptr();
    #[inline(always)]
    unsafe fn finish(acc: __m512, pw: *const f32, px: *const f32, kk: usize, k: usize) -> f32 {
        // A fixed shuffle tree (the same in every tile shape): a serial sum of the 16 lanes
        // cost more than the tile's whole main loop.
        let mut t: f32 = _mm512_reduce_add_ps(acc);
        for i in kk..k {
            t += *pw.add(i) * *px.add(i);
        }
        t
    }
    let mut j = 0;
    while j < rows {
        let wr = (rows - j).min(4);
        let mut r = 0;
        while r < m {
            let xr = (m - r).min(4);
            let mut acc = [[_mm512_setzero_ps(); 4]; 4];
            let mut i = 0;
            // The first input tile of a block streams its weight rows from memory: ask for
            // the next block's rows meanwhile (one block ahead), which the hardware
            // prefetcher does not do across these short interleaved rows.
            let ahead = r == 0 && j + 8 <= rows;
            if wr == 4 && xr == 4 {
                while i < kk {
                    if ahead {
                        for q in 4..8 {
                            _mm_prefetch::<_MM_HINT_T1>(pw.add((j + q) * k + i) as *const i8);
                        }
                    }
                    let wv = [
                        _mm512_loadu_ps(pw.add(j * k + i)),
                        _mm512_loadu_ps(pw.add((j + 1) * k + i)),
                        _mm512_loadu_ps(pw.add((j + 2) * k + i)),
                        _mm512_loadu_ps(pw.add((j + 3) * k + i)),
                    ];
                    for (c, row) in acc.iter_mut().enumerate() {
                        let xv = _mm512_loadu_ps(px.add((r + c) * k + i));
                        for (q, a) in row.iter_mut().enumerate() {
                            *a = _mm512_fmadd_ps(wv[q], xv, *a);
                        }
                    }
                    i += 16;
                }
            } else {
                while i < kk {
                    if ahead {
                        for q in 4..8 {
                            _mm_prefetch::<_MM_HINT_T1>(pw.add((j + q) * k + i) as *const i8);
                        }
                    }
                    for (c, row) in acc.iter_mut().enumerate().take(xr) {
                        let xv = _mm512_loadu_ps(px.add((r + c) * k + i));
                        for (q, a) in row.iter_mut().enumerate().take(wr) {
                            *a = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add((j + q) * k + i)), xv, *a);
                        }
                    }
                    i += 16;
                }
            }
            for (c, row) in acc.iter().enumerate().take(xr) {
                for (q, a) in row.iter().enumerate().take(wr) {
                    block[(j + q) * m + r + c] =
                        finish(*a, pw.add((j + q) * k), px.add((r + c) * k), kk, k);
                }
            }
            r += xr;
        }
        j += wr;
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Four weight rows against one input row; `None` without AVX2/FMA.
#[inline]
fn four_row_dots(w4: &[f32], x: &[f32], k: usize) -> Option<[f32; 4]> {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the CPU supports the features the function is compiled for.
            return Some(unsafe { dot4w_avx2(w4, x, k) });
        }
    }
    let _ = (w4, x, k);
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4w_avx2(w4: &[f32], x: &[f32], k: usize) -> [f32; 4] {
    use std::arch::x86_64::*;
    let pw = w4.as_ptr();
    let px = x.as_ptr();
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 8 <= k {
        let xv = _mm256_loadu_ps(px.add(i));
        for (q, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(q * k + i)), xv, *a);
        }
        i += 8;
    }
    let mut out = [0f32; 4];
    for (q, a) in acc.iter().enumerate() {
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), *a);
        let mut t: f32 = lanes.iter().sum();
        for j in i..k {
            t += *pw.add(q * k + j) * *px.add(j);
        }
        out[q] = t;
    }
    out
}

/// Two weight rows against every input row, four input rows at a time; false when the CPU
/// lacks AVX2/FMA or fewer than four input rows remain (caller falls back).
#[inline]
fn row_pair_dots(w2: &[f32], x: &[f32], k: usize, y0: &mut [f32], y1: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let m = y0.len();
        if m >= 4
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            let mut r = 0;
            while r + 4 <= m {
                // SAFETY: the CPU supports the features the function is compiled for.
                let d = unsafe { dot2x4_avx2(w2, &x[r * k..(r + 4) * k], k) };
                y0[r..r + 4].copy_from_slice(&d[0]);
                y1[r..r + 4].copy_from_slice(&d[1]);
                r += 4;
            }
            for i in r..m {
                let xr = &x[i * k..(i + 1) * k];
                // SAFETY: as above.
                unsafe {
                    y0[i] = dot_avx2(&w2[..k], xr);
                    y1[i] = dot_avx2(&w2[k..], xr);
                }
            }
            return true;
        }
    }
    let _ = (w2, x, k, y0, y1);
    false
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot2x4_avx2(w2: &[f32], x: &[f32], k: usize) -> [[f32; 4]; 2] {
    use std::arch::x86_64::*;
    let pw = w2.as_ptr();
    let px = x.as_ptr();
    let mut a0 = [_mm256_setzero_ps(); 4];
    let mut a1 = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 8 <= k {
        let w0 = _mm256_loadu_ps(pw.add(i));
        let w1 = _mm256_loadu_ps(pw.add(k + i));
        for r in 0..4 {
            let xv = _mm256_loadu_ps(px.add(r * k + i));
            a0[r] = _mm256_fmadd_ps(w0, xv, a0[r]);
            a1[r] = _mm256_fmadd_ps(w1, xv, a1[r]);
        }
        i += 8;
    }
    let mut out = [[0f32; 4]; 2];
    for r in 0..4 {
        for (row, acc) in [(0usize, &a0), (1, &a1)] {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc[r]);
            let mut t: f32 = lanes.iter().sum();
            for j in i..k {
                t += *pw.add(row * k + j) * *px.add(r * k + j);
            }
            out[row][r] = t;
        }
    }
    out
}

/// `y[r] = dot(w, x[r])` for every input row r.
#[inline]
fn row_dots(w: &[f32], x: &[f32], k: usize, y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            let mut r = 0;
            // Four input rows per pass: the weight row is loaded once for four products.
            while r + 4 <= y.len() {
                // SAFETY: the CPU supports the features the function is compiled for.
                let d = unsafe { dot4_avx2(w, &x[r * k..(r + 4) * k], k) };
                y[r..r + 4].copy_from_slice(&d);
                r += 4;
            }
            for (i, yr) in y.iter_mut().enumerate().skip(r) {
                *yr = unsafe { dot_avx2(w, &x[i * k..(i + 1) * k]) };
            }
            return;
        }
    }
    for (r, yr) in y.iter_mut().enumerate() {
        *yr = dot_portable(w, &x[r * k..(r + 1) * k]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4_avx2(w: &[f32], x: &[f32], k: usize) -> [f32; 4] {
    use std::arch::x86_64::*;
    let pw = w.as_ptr();
    let px = x.as_ptr();
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 8 <= k {
        let wv = _mm256_loadu_ps(pw.add(i));
        for (r, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(px.add(r * k + i)), *a);
        }
        i += 8;
    }
    let mut out = [0f32; 4];
    for (r, a) in acc.iter().enumerate() {
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), *a);
        let mut t: f32 = lanes.iter().sum();
        for j in i..k {
            t += *pw.add(j) * *px.add(r * k + j);
        }
        out[r] = t;
    }
    out
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
}

/// One accumulator, elements in order: the same summation as each lane of `dot4_avx2` and
/// `dot2x4_avx2`, so a row's result does not depend on how many rows share the call (batched
/// and single-sequence decoding agree bit for bit). Memory, not the FMA chain, bounds it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc);
        i += 8;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    let mut total: f32 = lanes.iter().sum();
    while i < n {
        total += *pa.add(i) * *pb.add(i);
        i += 1;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn dot_kernels_agree() {
        let a: Vec<f32> = (0..77).map(|i| (i as f32 * 0.3).sin()).collect();
        let b: Vec<f32> = (0..77).map(|i| (i as f32 * 0.7).cos()).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot_portable(&a, &b) as f64 - exact).abs() < 1e-4);
        let mut y = [0f32; 5];
        let x: Vec<f32> = (0..5).flat_map(|_| b.clone()).collect();
        row_dots(&a, &x, 77, &mut y);
        for v in y {
            assert!((v as f64 - exact).abs() < 1e-4);
        }
    }

    /// Both instruction-set paths: equal to candle's matmul, and a row's result is the same
    /// bit for bit whether it is multiplied alone or with other rows (batched decoding must
    /// not change a sequence's tokens).
    #[test]
    fn both_paths_are_exact_and_independent_of_batch_size() {
        let d = Device::Cpu;
        let mut paths = vec![false];
        if has_avx512() {
            paths.push(true);
        }
        for avx512 in paths {
            for (out, k) in [(130, 37), (64, 576), (9, 8)] {
                let x = Tensor::randn(0f32, 1.0, (16, k), &d).unwrap();
                let w = Tensor::randn(0f32, 1.0, (out, k), &d).unwrap();
                let all = multi_impl(&x, &[&w], avx512).unwrap().unwrap().remove(0);
                let want: Vec<Vec<f32>> = x.matmul(&w.t().unwrap()).unwrap().to_vec2().unwrap();
                for (r, row) in want.iter().enumerate() {
                    for (o, v) in row.iter().enumerate() {
                        assert!((all[r * out + o] - v).abs() < 1e-4 * (k as f32).sqrt());
                    }
                }
                for m in [1, 2, 3, 5] {
                    let part = multi_impl(&x.narrow(0, 0, m).unwrap(), &[&w], avx512)
                        .unwrap()
                        .unwrap()
                        .remove(0);
                    assert_eq!(part[..], all[..m * out], "avx512={avx512} m={m} {out}x{k}");
                }
            }
        }
    }

    #[test]
    fn equals_candle_matmul() {
        let d = Device::Cpu;
        for (m, out, k) in [(1, 7, 5), (3, 130, 37), (16, 64, 576), (5, 1000, 8)] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &d).unwrap();
            let w = Tensor::randn(0f32, 1.0, (out, k), &d).unwrap();
            let a = small_matmul_t(&x, &w).unwrap().unwrap();
            let b = x.matmul(&w.t().unwrap()).unwrap();
            let err = (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(err < 1e-4 * (k as f32).sqrt(), "{m}x{out}x{k}: {err}");
        }
        // Non-contiguous or too many rows: declined.
        let x = Tensor::randn(0f32, 1.0, (17, 4), &d).unwrap();
        let w = Tensor::randn(0f32, 1.0, (3, 4), &d).unwrap();
        assert!(small_matmul_t(&x, &w).unwrap().is_none());
        assert!(
            small_matmul_t(&x.narrow(0, 0, 2).unwrap(), &w.t().unwrap().t().unwrap())
                .unwrap()
                .is_some()
        );
        let wt = Tensor::randn(0f32, 1.0, (4, 3), &d).unwrap();
        assert!(
            small_matmul_t(&x.narrow(0, 0, 2).unwrap(), &wt.t().unwrap())
                .unwrap()
                .is_none()
        );
    }
}
