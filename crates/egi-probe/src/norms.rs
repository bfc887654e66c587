//! Norms of a rank-structured gradient G = D^T X (D: n x out output gradients, X: n x in
//! inputs, n positions) without forming G when n is the small side.
//!
//! ||G||_F^2 = tr((X X^T)(D D^T)). With X^T = Q R (Householder QR, R upper triangular), G =
//! D^T R^T Q^T has the singular values of R D: the square roots of the eigenvalues of
//! R (D D^T) R^T, n x n instead of out x in. R's leading n x n block is the R of X's first n
//! rows, so one factorization per matrix and response serves every target token. QR needs no
//! positive definiteness: on real text X X^T is exactly singular (layer 0's inputs repeat
//! bit for bit for every repeated token id), where a Cholesky factor does not exist, and R
//! then simply has zero rows. Only when n exceeds the input width is G formed and its
//! singular values taken directly (counted as a dense fallback).

use anyhow::{bail, Result};
use faer::Mat;
#[cfg(test)]
use faer::Side;

/// Which norm of the gradient (docs/method.md section 2; default nuclear).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
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

/// Per (matrix, response): the inputs X and the R factor of X^T = Q R.
pub struct InputSide {
    x: Dense,
    /// Upper-triangular R of the QR factorization of X^T's first m = min(T, in) columns
    /// (m x m, column-major faer): X_n X_n^T = R_n^T R_n for every prefix n <= m.
    r: Mat<f64>,
}

impl InputSide {
    pub fn new(x: Dense) -> Self {
        let m = x.rows.min(x.cols);
        let xt = Mat::<f64>::from_fn(x.cols, m, |i, j| x.data[j * x.cols + i]);
        let r = if m == 0 {
            Mat::zeros(0, 0)
        } else {
            xt.qr().thin_R().to_owned()
        };
        InputSide { x, r }
    }

    /// Whether [`gradient_norm`] will read D itself, rather than only D D^T, for `n`
    /// positions and `out` output features.
    pub fn needs_d(&self, n: usize, out: usize) -> bool {
        !(n <= self.r.nrows() && n <= out)
    }

    /// Whether [`gradient_norm`] forms G (out x in) for `n` positions: more positions than
    /// inputs, where no n x n route exists.
    pub fn dense_fallback(&self, n: usize) -> bool {
        n > self.r.nrows()
    }
}

/// ||D^T X_n|| for the first `n` positions, `dd` = D D^T over those positions (n x n,
/// row-major), `d` = D itself (n x out) where the caller gives it (at least n rows: then the
/// nuclear norm is taken from D rather than from D D^T), else an empty matrix.
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
    if n <= inp.r.nrows() {
        let r = inp.r.as_ref().submatrix(0, 0, n, n);
        if n <= d.cols && d.rows < n {
            let b = Mat::<f64>::from_fn(n, n, |i, j| dd[i * n + j]);
            let m = r * &b * r.transpose();
            // Symmetrize away rounding before the symmetric eigensolver.
            let m = Mat::<f64>::from_fn(n, n, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
            let ev = sym_eigenvalues(m)?;
            // Eigenvalues are squared singular values: rounding leaves exact zeros (a rank-
            // deficient X, e.g. repeated tokens at layer 0) at about eps * lambda_max, whose
            // square roots (~1e-8 sigma_max each) would add up. Below this floor no singular
            // value is resolved anyway.
            let floor = 16.0 * n as f64 * f64::EPSILON * ev.iter().fold(0f64, |a, &x| a.max(x));
            return Ok(ev.iter().filter(|&&x| x > floor).map(|&x| x.sqrt()).sum());
        }
        // Given D (more positions than outputs, as for k/v of a GQA model on a long prefix,
        // or an f64 model, where the squared singular values of the route above resolve
        // nothing below 1.5e-8 sigma_max): the singular values of R D (n x out) directly, a
        // smaller SVD than G's own (out x in).
        if d.rows < n {
            bail!("gradient_norm: D has {} rows, {n} needed", d.rows);
        }
        let dm = Mat::<f64>::from_fn(n, d.cols, |s, o| d.at(s, o));
        return nuclear_dense(&(r * &dm));
    }
    if d.rows < n {
        bail!("gradient_norm: D has {} rows, {n} needed", d.rows);
    }
    let dm = Mat::<f64>::from_fn(n, d.cols, |s, o| d.at(s, o));
    // More positions than inputs: form G = D^T X (out x in) and take its singular values.
    let xm = Mat::<f64>::from_fn(n, k_in, |s, i| inp.x.at(s, i));
    nuclear_dense(&(dm.transpose() * &xm))
}

/// Eigenvalues (unordered) of the symmetric matrix `m`, whose lower triangle is read:
/// faer's Householder tridiagonalization, then [`tridiagonal_eigenvalues`]. faer's own
/// eigenvalue path runs an implicit QR with a Givens rotation (a square root) per step on
/// the tridiagonal matrix, about two thirds of its time at these sizes (n ~ 110);
/// eigenvalues alone need no rotations.
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
