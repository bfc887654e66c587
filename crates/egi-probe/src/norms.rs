//! Norms of a rank-structured gradient G = D^T X (D: n x out output gradients, X: n x in
//! inputs, n positions) without forming G when n is the small side.
//!
//! ||G||_F^2 = tr((X X^T)(D D^T)). The nonzero singular values of G are the square roots of the
//! eigenvalues of L^T (D D^T) L, with L the Cholesky factor of X X^T: n x n instead of
//! out x in. The Cholesky factor of a leading block of X X^T is the leading block of its
//! factor, so one factorization per matrix and response serves every target token.
//! When n exceeds min(in, out) (or X X^T is singular), G is formed and its singular values
//! taken directly.

use anyhow::{bail, Result};
use faer::{Mat, Side};

/// Which norm of the gradient (docs/method.md section 2; default nuclear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    Nuclear,
    Frobenius,
}

/// Row-major dense matrix in f64.
#[derive(Clone)]
pub struct Dense {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Dense {
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(rows * cols, data.len());
        Dense { rows, cols, data }
    }
    fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }
}

/// Per (matrix, response): the inputs X and the Cholesky factor of their Gram matrix.
pub struct InputSide {
    x: Dense,
    /// Lower Cholesky factor of X X^T (column-major faer), or None when X X^T is singular.
    chol: Option<Mat<f64>>,
}

impl InputSide {
    pub fn new(x: Dense) -> Self {
        let n = x.rows;
        let k = x.cols;
        // X X^T through faer's matmul (blocked, SIMD): a scalar loop here was a quarter of
        // the fingerprint's time.
        let xm = Mat::<f64>::from_fn(n, k, |i, j| x.data[i * k + j]);
        let gram = &xm * xm.transpose();
        let chol = if n <= k {
            gram.llt(Side::Lower).ok().map(|f| f.L().to_owned())
        } else {
            None
        };
        InputSide { x, chol }
    }
}

impl InputSide {
    /// Whether [`gradient_norm`] will read D itself (large side) for `n` positions and
    /// `out` output features, rather than only D D^T.
    pub fn needs_d(&self, n: usize, out: usize) -> bool {
        !(n <= self.x.cols && n <= out && self.chol.is_some())
    }
}

/// ||D^T X_n|| for the first `n` positions, `dd` = D D^T over those positions (n x n,
/// row-major), `d` = D itself (n x out) for the fallback path.
pub fn gradient_norm(inp: &InputSide, n: usize, dd: &[f64], d: &Dense, norm: Norm) -> Result<f64> {
    if dd.len() != n * n || n > inp.x.rows {
        bail!("gradient_norm: inconsistent sizes");
    }
    let k_in = inp.x.cols;
    if norm == Norm::Frobenius {
        // tr(A B) with A = X X^T over the first n rows.
        let mut s = 0.0;
        for i in 0..n {
            for j in 0..n {
                let a: f64 = (0..k_in).map(|c| inp.x.at(i, c) * inp.x.at(j, c)).sum();
                s += a * dd[i * n + j];
            }
        }
        return Ok(s.max(0.0).sqrt());
    }
    let small_side = n <= k_in && n <= d.cols;
    if let (true, Some(l)) = (small_side, &inp.chol) {
        let l = l.as_ref().submatrix(0, 0, n, n);
        let b = Mat::<f64>::from_fn(n, n, |i, j| dd[i * n + j]);
        let m = l.transpose() * &b * l;
        // Symmetrize away rounding before the symmetric eigensolver.
        let m = Mat::<f64>::from_fn(n, n, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
        let ev = sym_eigenvalues(m)?;
        return Ok(ev.iter().map(|&x| x.max(0.0).sqrt()).sum());
    }
    if d.rows < n {
        bail!("gradient_norm: D has {} rows, {n} needed", d.rows);
    }
    let dm = Mat::<f64>::from_fn(n, d.cols, |s, o| d.at(s, o));
    if let (true, Some(l)) = (n <= k_in, &inp.chol) {
        // More positions than outputs (k/v of a GQA model on a long prefix): with X X^T =
        // L L^T, G G^T = (L^T D)^T (L^T D), so G has the singular values of L^T D (n x out),
        // a smaller SVD than G's own (out x in).
        let l = l.as_ref().submatrix(0, 0, n, n);
        return nuclear_dense(&(l.transpose() * &dm));
    }
    // X X^T singular or more positions than inputs: form G = D^T X (out x in) and take its
    // singular values.
    let xm = Mat::<f64>::from_fn(n, k_in, |s, i| inp.x.at(s, i));
    nuclear_dense(&(dm.transpose() * &xm))
}

/// Eigenvalues (unordered) of the symmetric matrix `m`, whose lower triangle is read:
/// faer's Householder tridiagonalization, then [`tridiagonal_eigenvalues`]. faer's own
/// eigenvalue path runs an implicit QR with a Givens rotation (a square root) per step on
/// the tridiagonal matrix: about two thirds of its time at these sizes (n ~ 110: 0.69 of
/// 1.06 ms; this path takes 0.63 ms in all).
pub fn sym_eigenvalues(mut m: Mat<f64>) -> Result<Vec<f64>> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd::tridiag;
    let n = m.nrows();
    if n != m.ncols() {
        bail!("sym_eigenvalues: {n} x {} is not square", m.ncols());
    }
    if n <= 1 {
        return Ok((0..n).map(|i| m[(i, i)]).collect());
    }
    let par = faer::Par::Seq;
    let bs = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<f64>(n, n);
    let mut h = Mat::<f64>::zeros(bs, n - 1);
    let mut buf = MemBuffer::new(tridiag::tridiag_in_place_scratch::<f64>(
        n,
        par,
        Default::default(),
    ));
    tridiag::tridiag_in_place(
        m.as_mut(),
        h.as_mut(),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    );
    let mut d: Vec<f64> = (0..n).map(|i| m[(i, i)]).collect();
    let mut e: Vec<f64> = (0..n - 1).map(|i| m[(i + 1, i)]).collect();
    tridiagonal_eigenvalues(&mut d, &mut e)?;
    Ok(d)
}

/// All eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and off-diagonal
/// `e`, in place in `d` (unordered; `e` is destroyed). The square-root-free QL/QR iteration
/// of Pal, Walker and Kahan (LAPACK's dsterf, written here from its description): no
/// eigenvectors, so each step updates squared off-diagonals and needs no rotation. faer
/// exposes no eigenvalue-only tridiagonal solver, hence this one; its tests compare it with
/// faer's eigenvalues.
pub fn tridiagonal_eigenvalues(d: &mut [f64], e: &mut [f64]) -> Result<()> {
    let n = d.len();
    if n <= 1 {
        return Ok(());
    }
    if e.len() + 1 != n {
        bail!(
            "tridiagonal_eigenvalues: {} off-diagonals for {n} rows",
            e.len()
        );
    }
    let eps = f64::EPSILON * 0.5;
    let eps2 = eps * eps;
    let max_iter = 30 * n;
    let mut iters = 0;
    let mut l1 = 0;
    while l1 < n {
        if l1 > 0 {
            e[l1 - 1] = 0.0;
        }
        // The unreduced block l1..=m.
        let mut m = l1;
        while m + 1 < n {
            if e[m].abs() <= d[m].abs().sqrt() * d[m + 1].abs().sqrt() * eps {
                e[m] = 0.0;
                break;
            }
            m += 1;
        }
        let (lo, hi) = (l1, m);
        l1 = m + 1;
        if hi == lo {
            continue;
        }
        // Scale the block to unit size (no overflow in the squares), square the
        // off-diagonals.
        let norm = d[lo..=hi]
            .iter()
            .chain(&e[lo..hi])
            .fold(0f64, |a, &x| a.max(x.abs()));
        if norm == 0.0 {
            continue;
        }
        for x in &mut d[lo..=hi] {
            *x /= norm;
        }
        for x in &mut e[lo..hi] {
            *x = (*x / norm) * (*x / norm);
        }
        // QL when the top is the larger end, QR otherwise (graded matrices converge from the
        // small end).
        if d[hi].abs() >= d[lo].abs() {
            ql(d, e, lo, hi, eps2, &mut iters, max_iter)?;
        } else {
            qr(d, e, lo, hi, eps2, &mut iters, max_iter)?;
        }
        for x in &mut d[lo..=hi] {
            *x *= norm;
        }
    }
    Ok(())
}

/// Eigenvalues of [[a, b], [b, c]]: the larger-magnitude one, then the other from the
/// determinant (accurate when it is small).
fn eig2(a: f64, b: f64, c: f64) -> (f64, f64) {
    let mean = 0.5 * (a + c);
    let rad = (0.5 * (a - c)).hypot(b);
    let rt1 = if mean >= 0.0 { mean + rad } else { mean - rad };
    let rt2 = if rt1 != 0.0 {
        (a * c - b * b) / rt1
    } else {
        -rad
    };
    (rt1, rt2)
}

/// Shift from the leading 2 x 2 block at `p` (diagonal), `q` (next diagonal), `e2` (squared
/// off-diagonal): the eigenvalue of that block closer to `p`.
fn shift(p: f64, q: f64, e2: f64) -> f64 {
    let rte = e2.sqrt();
    let sigma = (q - p) / (2.0 * rte);
    let r = sigma.hypot(1.0);
    p - rte / (sigma + r.copysign(sigma))
}

fn ql(
    d: &mut [f64],
    e: &mut [f64],
    mut l: usize,
    hi: usize,
    eps2: f64,
    iters: &mut usize,
    max_iter: usize,
) -> Result<()> {
    while l <= hi {
        // Small off-diagonal below l?
        let mut m = l;
        while m < hi {
            if e[m].abs() <= eps2 * (d[m] * d[m + 1]).abs() {
                e[m] = 0.0;
                break;
            }
            m += 1;
        }
        if m == l {
            l += 1; // d[l] converged
            continue;
        }
        if m == l + 1 {
            let (r1, r2) = eig2(d[l], e[l].sqrt(), d[l + 1]);
            d[l] = r1;
            d[l + 1] = r2;
            e[l] = 0.0;
            l += 2;
            continue;
        }
        *iters += 1;
        if *iters > max_iter {
            bail!("tridiagonal eigenvalues did not converge in {max_iter} iterations");
        }
        let sigma = shift(d[l], d[l + 1], e[l]);
        let (mut c, mut s) = (1.0, 0.0);
        let mut gamma = d[m] - sigma;
        let mut p = gamma * gamma;
        for i in (l..m).rev() {
            let bb = e[i];
            let r = p + bb;
            if i + 1 != m {
                e[i + 1] = s * r;
            }
            let oldc = c;
            c = p / r;
            s = bb / r;
            let oldgam = gamma;
            let alpha = d[i];
            gamma = c * (alpha - sigma) - s * oldgam;
            d[i + 1] = oldgam + (alpha - gamma);
            p = if c != 0.0 {
                gamma * gamma / c
            } else {
                oldc * bb
            };
        }
        e[l] = s * p;
        d[l] = sigma + gamma;
    }
    Ok(())
}

/// [`ql`] from the other end: chases the bulge upward, deflating at `lo`.
fn qr(
    d: &mut [f64],
    e: &mut [f64],
    lo: usize,
    mut l: usize,
    eps2: f64,
    iters: &mut usize,
    max_iter: usize,
) -> Result<()> {
    loop {
        // Small off-diagonal above l?
        let mut m = l;
        while m > lo {
            if e[m - 1].abs() <= eps2 * (d[m] * d[m - 1]).abs() {
                e[m - 1] = 0.0;
                break;
            }
            m -= 1;
        }
        if m == l {
            // d[l] converged
            if l == lo {
                return Ok(());
            }
            l -= 1;
            continue;
        }
        if m + 1 == l {
            let (r1, r2) = eig2(d[l], e[l - 1].sqrt(), d[l - 1]);
            d[l] = r1;
            d[l - 1] = r2;
            e[l - 1] = 0.0;
            if l < lo + 2 {
                return Ok(());
            }
            l -= 2;
            continue;
        }
        *iters += 1;
        if *iters > max_iter {
            bail!("tridiagonal eigenvalues did not converge in {max_iter} iterations");
        }
        let sigma = shift(d[l], d[l - 1], e[l - 1]);
        let (mut c, mut s) = (1.0, 0.0);
        let mut gamma = d[m] - sigma;
        let mut p = gamma * gamma;
        for i in m..l {
            let bb = e[i];
            let r = p + bb;
            if i != m {
                e[i - 1] = s * r;
            }
            let oldc = c;
            c = p / r;
            s = bb / r;
            let oldgam = gamma;
            let alpha = d[i + 1];
            gamma = c * (alpha - sigma) - s * oldgam;
            d[i] = oldgam + (alpha - gamma);
            p = if c != 0.0 {
                gamma * gamma / c
            } else {
                oldc * bb
            };
        }
        e[l - 1] = s * p;
        d[l] = sigma + gamma;
    }
}

/// Nuclear norm by a full SVD (the oracle's way).
pub fn nuclear_dense(g: &Mat<f64>) -> Result<f64> {
    let sv = g
        .singular_values()
        .map_err(|e| anyhow::anyhow!("svd: {e:?}"))?;
    Ok(sv.iter().sum())
}

pub fn frobenius_dense(g: &Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..g.ncols() {
        for i in 0..g.nrows() {
            s += g[(i, j)] * g[(i, j)];
        }
    }
    s.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rnd(rows: usize, cols: usize, seed: u64) -> Dense {
        let mut s = seed;
        let data = (0..rows * cols)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .collect();
        Dense::new(rows, cols, data)
    }

    fn direct(d: &Dense, x: &Dense, n: usize) -> Mat<f64> {
        Mat::<f64>::from_fn(d.cols, x.cols, |o, i| {
            (0..n).map(|s| d.at(s, o) * x.at(s, i)).sum()
        })
    }

    #[test]
    fn rank_structured_norms_equal_full_svd() {
        // (positions, out, in): small side, out smaller than n, n larger than in.
        for (t, out, inp) in [(6, 20, 15), (9, 5, 30), (12, 9, 7), (3, 3, 3)] {
            let x = rnd(t, inp, 1);
            let d = rnd(t, out, 2);
            let side = InputSide::new(x.clone());
            for n in 1..=t {
                let dd: Vec<f64> = (0..n * n)
                    .map(|ij| (0..out).map(|o| d.at(ij / n, o) * d.at(ij % n, o)).sum())
                    .collect();
                let g = direct(&d, &x, n);
                let want = nuclear_dense(&g).unwrap();
                let got = gradient_norm(&side, n, &dd, &d, Norm::Nuclear).unwrap();
                assert!(
                    (got - want).abs() <= 1e-10 * want.max(1.0),
                    "{t},{out},{inp},{n}: {got} vs {want}"
                );
                let f = gradient_norm(&side, n, &dd, &d, Norm::Frobenius).unwrap();
                assert!((f - frobenius_dense(&g)).abs() < 1e-10);
            }
        }
    }

    fn faer_eigs(m: &Mat<f64>) -> Vec<f64> {
        let mut v = m.self_adjoint_eigenvalues(Side::Lower).unwrap();
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn eigenvalues_match_faer() {
        let mut cases: Vec<Mat<f64>> = vec![];
        for (n, seed) in [(2, 3), (3, 4), (7, 5), (40, 6), (131, 7)] {
            // Indefinite symmetric.
            let a = rnd(n, n, seed);
            cases.push(Mat::from_fn(n, n, |i, j| a.at(i, j) + a.at(j, i)));
            // PSD of low rank (the fingerprint's case: D D^T has rank <= out), scaled far
            // from 1.
            let b = rnd(n, (n / 3).max(1), seed + 100);
            let g = Mat::<f64>::from_fn(n, b.cols, |i, j| b.at(i, j));
            cases.push((&g * g.transpose()) * faer::Scale(1e7));
            // Graded: entries spanning 12 orders of magnitude.
            cases.push(Mat::from_fn(n, n, |i, j| {
                (a.at(i, j) + a.at(j, i)) * 10f64.powi(-((i + j) as i32 * 12 / (2 * n) as i32))
            }));
        }
        // Already tridiagonal / diagonal / zero.
        cases.push(Mat::from_fn(5, 5, |i, j| {
            if i == j {
                i as f64 - 2.0
            } else {
                0.0
            }
        }));
        cases.push(Mat::zeros(4, 4));
        for (c, m) in cases.iter().enumerate() {
            let want = faer_eigs(m);
            let mut got = sym_eigenvalues(m.clone()).unwrap();
            got.sort_by(f64::total_cmp);
            let scale = want.iter().fold(0f64, |a, x| a.max(x.abs())).max(1e-300);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-12 * scale, "case {c}: {g} vs {w}");
            }
            // What the fingerprint takes from them.
            let nuc = |v: &[f64]| v.iter().map(|x| x.max(0.0).sqrt()).sum::<f64>();
            let (a, b) = (nuc(&got), nuc(&want));
            assert!(
                (a - b).abs() <= 1e-6 * b.max(1e-300),
                "case {c}: {a} vs {b}"
            );
        }
    }
}
