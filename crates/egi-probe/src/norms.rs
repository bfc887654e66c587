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

/// Which norm of the gradient (METHOD.md section 1; default nuclear).
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
        let ev = m
            .self_adjoint_eigenvalues(Side::Lower)
            .map_err(|e| anyhow::anyhow!("eigenvalues: {e:?}"))?;
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
}
