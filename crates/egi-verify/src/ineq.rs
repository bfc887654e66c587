//! Inequalities (`x ≥ 3`, `-2 < x ≤ 4`, `x ≠ 1`) and intervals compared by the
//! set of points they are true on, so `5 ≥ x`, `x ≤ 5`, `-x ≥ -5` and
//! `(-∞, 5]` are one answer while `x < 5` and `(-∞, 5)` are another.
//!
//! One variable: the truth of both sides is tested on a fixed non-uniform grid
//! plus every boundary point (roots of each side's `lhs - rhs`, found by
//! bisection, and interval endpoints) and a point just either side of it, so
//! open and closed ends are told apart. Several variables: seeded random points,
//! plus the same pattern of strict / non-strict relations (a random point never
//! lands on a boundary). Bounded: a fixed number of evaluations per side.

use crate::expr::{collect_vars, eval, parse_expr, Expr, SplitMix};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
}

/// A conjunction of chains `terms[0] ops[0] terms[1] ops[1] terms[2] ...`
/// ("x ≥ 2 and x ≤ 5" is two chains).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ineq {
    chains: Vec<Chain>,
}

#[derive(Debug, Clone, PartialEq)]
struct Chain {
    terms: Vec<Expr>,
    ops: Vec<Op>,
}

/// One interval of the real line; `None` bounds are infinite.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Interval {
    pub lo: f64,
    pub lo_closed: bool,
    pub hi: f64,
    pub hi_closed: bool,
}

fn op_of(c: char) -> Option<Op> {
    Some(match c {
        '<' => Op::Lt,
        '≤' => Op::Le,
        '>' => Op::Gt,
        '≥' => Op::Ge,
        '≠' => Op::Ne,
        _ => return None,
    })
}

/// Parse chains of at most four relations over plain expressions, joined by `∩`.
pub(crate) fn parse_ineq(s: &str) -> Option<Ineq> {
    let parts: Vec<&str> = s.split('∩').collect();
    if parts.len() > 4 {
        return None;
    }
    let chains = parts
        .into_iter()
        .map(parse_chain)
        .collect::<Option<Vec<_>>>()?;
    let q = Ineq { chains };
    (!q.vars().is_empty()).then_some(q)
}

/// A side of a relation; `f(x)` alone is one unknown, as in `0 < f(x) < 1`.
fn term(s: &str) -> Option<Expr> {
    let c: Vec<char> = s.chars().collect();
    if c.len() == 4
        && c[0].is_ascii_alphabetic()
        && c[1] == '('
        && c[2].is_ascii_alphabetic()
        && c[3] == ')'
    {
        return Some(Expr::Var(s.to_string()));
    }
    parse_expr(s).ok()
}

fn parse_chain(s: &str) -> Option<Chain> {
    let mut terms = Vec::new();
    let mut ops = Vec::new();
    let mut st = 0;
    for (i, c) in s.char_indices() {
        if let Some(op) = op_of(c) {
            terms.push(term(&s[st..i])?);
            ops.push(op);
            st = i + c.len_utf8();
        }
    }
    terms.push(term(&s[st..])?);
    (!ops.is_empty() && ops.len() <= 4).then_some(Chain { terms, ops })
}

impl Ineq {
    fn vars(&self) -> Vec<String> {
        let mut v = Vec::new();
        for c in &self.chains {
            c.terms.iter().for_each(|t| collect_vars(t, &mut v));
        }
        v.sort();
        v
    }

    /// True / false at the point, None where a side is undefined.
    fn holds(&self, at: &[(String, f64)]) -> Option<bool> {
        let mut all = true;
        for c in &self.chains {
            all &= c.holds(at)?;
        }
        Some(all)
    }

    fn pattern(&self) -> (usize, usize, usize) {
        self.chains.iter().fold((0, 0, 0), |acc, c| {
            let p = c.pattern();
            (acc.0 + p.0, acc.1 + p.1, acc.2 + p.2)
        })
    }

    fn boundaries(&self, var: &str, grid: &[f64], out: &mut Vec<f64>) {
        self.chains
            .iter()
            .for_each(|c| c.boundaries(var, grid, out));
    }
}

impl Chain {
    fn holds(&self, at: &[(String, f64)]) -> Option<bool> {
        let vals: Vec<f64> = self.terms.iter().map(|t| eval(t, at)).collect();
        let mut all = true;
        for (k, op) in self.ops.iter().enumerate() {
            let (a, b) = (vals[k], vals[k + 1]);
            if a.is_nan() || b.is_nan() {
                return None;
            }
            let d = a - b;
            let zero = d.is_nan() || d.abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
            all &= match op {
                Op::Lt => !zero && d < 0.0,
                Op::Le => zero || d < 0.0,
                Op::Gt => !zero && d > 0.0,
                Op::Ge => zero || d > 0.0,
                Op::Ne => !zero,
            };
        }
        Some(all)
    }

    /// (strict, non-strict, ≠) counts: what random points cannot see.
    fn pattern(&self) -> (usize, usize, usize) {
        let mut p = (0, 0, 0);
        for op in &self.ops {
            match op {
                Op::Lt | Op::Gt => p.0 += 1,
                Op::Le | Op::Ge => p.1 += 1,
                Op::Ne => p.2 += 1,
            }
        }
        p
    }

    /// Boundary points in one variable: sign changes of each `lhs - rhs` on the grid.
    fn boundaries(&self, var: &str, grid: &[f64], out: &mut Vec<f64>) {
        let at = |x: f64| [(var.to_string(), x)];
        for k in 0..self.ops.len() {
            let f = |x: f64| eval(&self.terms[k], &at(x)) - eval(&self.terms[k + 1], &at(x));
            let mut prev: Option<(f64, f64)> = None;
            for &x in grid {
                let y = f(x);
                if !y.is_finite() {
                    prev = None;
                    continue;
                }
                if y == 0.0 {
                    out.push(x);
                } else if let Some((px, py)) = prev {
                    if py != 0.0 && (py < 0.0) != (y < 0.0) {
                        let (mut lo, mut hi, neg_lo) = (px, x, py < 0.0);
                        for _ in 0..60 {
                            let mid = 0.5 * (lo + hi);
                            let fm = f(mid);
                            if fm.is_nan() {
                                break;
                            }
                            if (fm < 0.0) == neg_lo {
                                lo = mid;
                            } else {
                                hi = mid;
                            }
                        }
                        out.push(0.5 * (lo + hi));
                    }
                }
                prev = Some((x, y));
                if out.len() > 64 {
                    return;
                }
            }
        }
    }
}

impl Interval {
    fn contains(&self, x: f64) -> bool {
        let above = if self.lo_closed {
            x >= self.lo
        } else {
            x > self.lo
        };
        let below = if self.hi_closed {
            x <= self.hi
        } else {
            x < self.hi
        };
        above && below
    }
}

/// A one-variable region: an inequality, intervals, or a union of regions.
pub(crate) enum Region<'a> {
    Ineq(&'a Ineq),
    Intervals(Vec<Interval>),
    Any(Vec<Region<'a>>),
}

impl Region<'_> {
    /// Some(the variable, None for intervals) when the region is over at most one.
    fn var(&self) -> Option<Option<String>> {
        match self {
            Region::Ineq(q) => {
                let v = q.vars();
                (v.len() == 1).then(|| v.into_iter().next())
            }
            Region::Intervals(_) => Some(None),
            Region::Any(rs) => {
                let mut var = None;
                for r in rs {
                    match (r.var()?, &var) {
                        (Some(x), Some(y)) if &x != y => return None,
                        (Some(x), None) => var = Some(x),
                        _ => {}
                    }
                }
                Some(var)
            }
        }
    }
    fn holds(&self, var: &str, x: f64) -> Option<bool> {
        match self {
            Region::Ineq(q) => q.holds(&[(var.to_string(), x)]),
            Region::Intervals(iv) => Some(iv.iter().any(|i| i.contains(x))),
            Region::Any(rs) => {
                let mut any = false;
                for r in rs {
                    any |= r.holds(var, x)?;
                }
                Some(any)
            }
        }
    }
    fn boundaries(&self, var: &str, grid: &[f64], out: &mut Vec<f64>) {
        match self {
            Region::Ineq(q) => q.boundaries(var, grid, out),
            Region::Intervals(iv) => {
                for i in iv {
                    out.extend([i.lo, i.hi].into_iter().filter(|v| v.is_finite()));
                }
            }
            Region::Any(rs) => rs.iter().for_each(|r| r.boundaries(var, grid, out)),
        }
    }
}

/// `sinh(t)` for t in [-8, 8]: dense near 0, reaching about ±1490.
fn grid() -> Vec<f64> {
    (-80..=80).map(|k| (k as f64 * 0.1).sinh()).collect()
}

/// Do two one-variable regions hold on exactly the same points?
pub(crate) fn same_region(a: &Region, b: &Region) -> bool {
    let (Some(va), Some(vb)) = (a.var(), b.var()) else {
        return false;
    };
    let var = match (va, vb) {
        (Some(x), Some(y)) if x != y => return false,
        (Some(x), _) | (_, Some(x)) => x,
        (None, None) => return false,
    };
    let g = grid();
    let mut crit = Vec::new();
    a.boundaries(&var, &g, &mut crit);
    b.boundaries(&var, &g, &mut crit);
    let mut pts = g;
    for c in crit.into_iter().take(128) {
        let d = 1e-6 * c.abs().max(1.0);
        pts.extend([c, c - d, c + d]);
    }
    let mut valid = 0;
    for x in pts {
        match (a.holds(&var, x), b.holds(&var, x)) {
            (Some(p), Some(q)) if p != q => return false,
            (Some(_), Some(_)) => valid += 1,
            _ => {}
        }
    }
    valid >= 20
}

/// Two inequalities in several variables: same truth at seeded random points
/// and the same pattern of strict and non-strict relations.
pub(crate) fn same_ineq(a: &Ineq, b: &Ineq) -> bool {
    let (va, vb) = (a.vars(), b.vars());
    if va != vb || va.len() > 8 {
        return false;
    }
    if va.len() == 1 {
        return same_region(&Region::Ineq(a), &Region::Ineq(b));
    }
    if a.pattern() != b.pattern() {
        return false;
    }
    let mut rng = SplitMix(0x1E0_0A11);
    let mut at: Vec<(String, f64)> = va.into_iter().map(|v| (v, 0.0)).collect();
    let mut valid = 0;
    for _ in 0..96 {
        for (_, v) in at.iter_mut() {
            *v = -6.0 + 12.0 * rng.next_f64();
        }
        match (a.holds(&at), b.holds(&at)) {
            (Some(p), Some(q)) if p != q => return false,
            (Some(_), Some(_)) => valid += 1,
            _ => {}
        }
    }
    valid >= 20
}
