//! Structured answer values (tuples, intervals, sets, matrices, equations)
//! built from the normalised plain syntax, and their comparison.

use crate::expr::{expr_equal, is_const, names_quantity, parse_expr, proportional, Expr};
use crate::ineq::{parse_ineq, same_ineq, same_region, Ineq, Interval, Region};

const MAX_ITEMS: usize = 64;
const MAX_DEPTH: usize = 8;

/// Where a [`Value::Set`] came from: `\{...\}`, a bare list "1, 3", or `±`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Braced,
    List,
    Pm,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Expr(Expr),
    /// Tuple or interval: opening and closing bracket kept.
    Seq(char, char, Vec<Value>),
    /// Order-free collection.
    Set(Vec<Value>, Kind),
    Matrix(Vec<Vec<Value>>),
    Union(Vec<Value>),
    Eq(Expr, Expr),
    /// An inequality or a chain of them, compared by where it holds.
    Ineq(Ineq),
    Rel(String),
    Text(String),
}

fn is_open(c: char) -> bool {
    matches!(c, '(' | '[' | '{')
}
fn is_close(c: char) -> bool {
    matches!(c, ')' | ']' | '}')
}

/// Split at top-level occurrences of `sep`. None if brackets are unbalanced.
fn split_top(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut depth: i64 = 0;
    let mut parts = Vec::new();
    let mut st = 0;
    for (i, ch) in s.char_indices() {
        if is_open(ch) {
            depth += 1;
        } else if is_close(ch) {
            depth -= 1;
            if depth < 0 {
                return None;
            }
        } else if ch == sep && depth == 0 {
            parts.push(&s[st..i]);
            st = i + ch.len_utf8();
        }
    }
    if depth != 0 {
        return None;
    }
    parts.push(&s[st..]);
    Some(parts)
}

/// Does the bracket opened at the first char close exactly at the last char?
fn wraps(s: &str) -> bool {
    if !s.starts_with(is_open) {
        return false;
    }
    let mut depth = 0i64;
    let n = s.chars().count();
    for (k, ch) in s.chars().enumerate() {
        if is_open(ch) {
            depth += 1;
        } else if is_close(ch) {
            depth -= 1;
            if depth == 0 {
                return k == n - 1;
            }
        }
    }
    false
}

fn is_var_name(s: &str) -> bool {
    let (head, sub) = match s.split_once('_') {
        Some((h, t)) => (h, Some(t)),
        None => (s, None),
    };
    let mut it = head.chars();
    let ok_head =
        matches!((it.next(), it.next()), (Some(c), None) if c.is_alphabetic() && c != 'π');
    ok_head && sub.is_none_or(|t| !t.is_empty() && t.chars().all(|c| c.is_alphanumeric()))
}

/// "f(x)" or a plain variable: a left-hand side that only names the answer.
fn is_name_lhs(s: &str) -> bool {
    if is_var_name(s) {
        return true;
    }
    // "f(x)", "f(3)", "g(-1)"
    let c: Vec<char> = s.chars().collect();
    let f = c.first().map_or(0, |x| x.len_utf8());
    if c.len() >= 4 && c.len() <= 10 && c[0].is_alphabetic() && c[1] == '(' && wraps(&s[f..]) {
        let arg = &s[f + 1..s.len() - 1];
        return is_var_name(arg)
            || arg
                .trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.');
    }
    // "(p,q)", "(a,b,c)"
    wraps(s)
        && s.starts_with('(')
        && split_top(&s[1..s.len() - 1], ',')
            .is_some_and(|p| p.len() > 1 && p.iter().all(|v| is_var_name(v)))
}

/// Words (possibly with digits, as in "June 20"): compared as lower-case text.
fn is_texty(s: &str) -> bool {
    let mut run = 0;
    let mut longest = 0;
    for c in s.chars() {
        if c.is_alphabetic() {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let has_digit = s.chars().any(|c| c.is_ascii_digit());
    (longest >= 3 || (!has_digit && longest >= 1))
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '\'' | '.' | '(' | ')' | '&'))
}

fn items(parts: Vec<&str>, depth: usize) -> Result<Vec<Value>, ()> {
    if parts.len() > MAX_ITEMS {
        return Err(());
    }
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match parse_value_d(p, depth + 1)? {
            Value::Set(v, Kind::Pm) => out.extend(v),
            v => out.push(v),
        }
    }
    if out.len() > MAX_ITEMS {
        return Err(());
    }
    Ok(out)
}

pub(crate) fn parse_value(s: &str) -> Result<Value, ()> {
    parse_value_d(s, 0)
}

fn parse_value_d(s: &str, depth: usize) -> Result<Value, ()> {
    if depth > MAX_DEPTH || s.is_empty() {
        return Err(());
    }
    let parts = split_top(s, '∪').ok_or(())?;
    if parts.len() > 1 {
        return Ok(Value::Union(items(parts, depth)?));
    }
    if !s.starts_with("mat(") {
        // "p=5,q=2; p=7,q=2": semicolons separate solutions, commas their parts
        let parts = split_top(s, ';').ok_or(())?;
        if parts.len() > 1 {
            return Ok(Value::Set(items(parts, depth)?, Kind::List));
        }
    }
    let parts = split_top(s, ',').ok_or(())?;
    if parts.len() > 1 {
        return Ok(Value::Set(items(parts, depth)?, Kind::List));
    }
    if s.starts_with("mat(") && wraps(&s[3..]) {
        let inner = &s[4..s.len() - 1];
        let rows = split_top(inner, ';').ok_or(())?;
        if rows.len() > MAX_ITEMS {
            return Err(());
        }
        let mut m = Vec::new();
        for r in rows {
            let cells = split_top(r, ',').ok_or(())?;
            let mut row = Vec::new();
            for c in cells {
                row.push(parse_value_d(c, depth + 1)?);
            }
            m.push(row);
        }
        return Ok(Value::Matrix(m));
    }
    if s.contains("mat(") {
        if let Some(m) = matrix_expr(s, depth) {
            return Ok(Value::Matrix(m));
        }
    }
    let first = s.chars().next().unwrap_or(' ');
    if wraps(s) {
        let last = s.chars().last().unwrap_or(' ');
        let inner = &s[first.len_utf8()..s.len() - last.len_utf8()];
        if first == '{' {
            // set-builder "{x | x > 2}", "{x : x > 2}"
            for sep in ['|', ':'] {
                if let Some((v, cond)) = inner.split_once(sep) {
                    if is_var_name(v) && !cond.is_empty() {
                        return parse_value_d(cond, depth + 1);
                    }
                }
            }
            if inner.is_empty() {
                return Ok(Value::Set(vec![], Kind::Braced));
            }
            return Ok(Value::Set(items(list_items(inner)?, depth)?, Kind::Braced));
        }
        let parts = list_items(inner)?;
        if parts.len() > 1 {
            if last == '}' {
                return Err(());
            }
            return Ok(Value::Seq(first, last, items(parts, depth)?));
        }
        if first == '(' && last == ')' || first == '[' && last == ']' {
            if let Ok(v) = parse_value_d(inner, depth + 1) {
                return Ok(v);
            }
        }
    }
    if let Some((lhs, rhs)) = s.split_once('∈') {
        if is_var_name(lhs) {
            return parse_value_d(rhs, depth + 1);
        }
    }
    // "x ≈ 11" is 11; "1/3 ≈ 0.33" is the exact 1/3
    if let Some((lhs, rhs)) = s.split_once('≈') {
        let rhs = rhs.split('≈').next().unwrap_or(rhs);
        let exact = if lhs.is_empty() || is_name_lhs(lhs) {
            rhs
        } else {
            lhs
        };
        return parse_value_d(exact, depth + 1);
    }
    if s.contains(['≤', '≥', '<', '>', '≠']) && !s.contains(['=', '→', '…', '∈', ':']) {
        if let Some(q) = parse_ineq(s) {
            return Ok(Value::Ineq(q));
        }
    }
    if let Some(v) = equation(s, depth)? {
        return Ok(v);
    }
    if s.contains(['≤', '≥', '<', '>', '≠', '→', '∩', '…', '∈', ':']) {
        return Ok(Value::Rel(s.to_string()));
    }
    if let Some(pos) = s.find('±') {
        let (a, b) = (&s[..pos], &s[pos + '±'.len_utf8()..]);
        let plus = format!("{a}+{b}");
        let minus = format!("{a}-{b}");
        let mut v = Vec::new();
        for t in [plus, minus] {
            match parse_value_d(&t, depth + 1)? {
                Value::Set(x, Kind::Pm) => v.extend(x),
                x => v.push(x),
            }
        }
        return Ok(Value::Set(v, Kind::Pm));
    }
    if let Ok(e) = parse_expr(s) {
        return Ok(Value::Expr(e));
    }
    if is_texty(s) {
        return Ok(Value::Text(s.to_lowercase()));
    }
    Err(())
}

/// `mat(..) + mat(..)`, `2mat(..)`, `mat(..)mat(..)`: a sum of products of
/// matrices and scalars, evaluated entry by entry (at most 4 matrices).
fn matrix_expr(s: &str, depth: usize) -> Option<Vec<Vec<Value>>> {
    use crate::expr::Expr as E;
    if s.matches("mat(").count() > 4 || s.starts_with("mat(") && wraps(&s[3..]) {
        return None;
    }
    type M = Vec<Vec<E>>;
    let entries = |v: Value| -> Option<M> {
        let Value::Matrix(rows) = v else { return None };
        rows.into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| match c {
                        Value::Expr(e) => Some(e),
                        _ => None,
                    })
                    .collect()
            })
            .collect()
    };
    let shape = |m: &M| (m.len(), m.first().map_or(0, |r| r.len()));
    let bx = Box::new;
    // split into signed terms at top-level + and -
    let mut terms: Vec<(bool, &str)> = Vec::new();
    let (mut d, mut st, mut neg) = (0i32, 0usize, false);
    for (i, c) in s.char_indices() {
        match c {
            '(' => d += 1,
            ')' => d -= 1,
            '+' | '-' if d == 0 => {
                if i > st {
                    terms.push((neg, &s[st..i]));
                } else if i > 0 {
                    return None;
                }
                neg = c == '-';
                st = i + 1;
            }
            _ => {}
        }
    }
    terms.push((neg, &s[st..]));
    let mut total: Option<M> = None;
    for (neg, t) in terms {
        // factors: mat(...) blocks and the scalar text between them
        let mut prod: Option<M> = None;
        let mut scalar = E::Num(if neg { -1.0 } else { 1.0 });
        let mut rest = t;
        while !rest.is_empty() {
            let (head, tail) = match rest.find("mat(") {
                Some(0) => {
                    let close = 3 + rest[3..]
                        .char_indices()
                        .scan(0i32, |d, (i, c)| {
                            *d += (c == '(') as i32 - (c == ')') as i32;
                            Some((i, *d))
                        })
                        .find(|x| x.1 == 0)?
                        .0;
                    let m = entries(parse_value_d(&rest[..=close], depth + 1).ok()?)?;
                    prod = Some(match prod {
                        None => m,
                        Some(p) => {
                            let ((r, k), (k2, c)) = (shape(&p), shape(&m));
                            if k != k2 {
                                return None;
                            }
                            (0..r)
                                .map(|i| {
                                    (0..c)
                                        .map(|j| {
                                            (1..k).fold(
                                                E::Mul(bx(p[i][0].clone()), bx(m[0][j].clone())),
                                                |acc, l| {
                                                    let term = E::Mul(
                                                        bx(p[i][l].clone()),
                                                        bx(m[l][j].clone()),
                                                    );
                                                    E::Add(bx(acc), bx(term))
                                                },
                                            )
                                        })
                                        .collect()
                                })
                                .collect()
                        }
                    });
                    (None, &rest[close + 1..])
                }
                Some(p) => (Some(&rest[..p]), &rest[p..]),
                None => (Some(rest), ""),
            };
            if let Some(h) = head.map(|h| h.trim_matches('*')).filter(|h| !h.is_empty()) {
                scalar = E::Mul(bx(scalar), bx(parse_expr(h).ok()?));
            }
            rest = tail.trim_start_matches('*');
        }
        let term: M = prod?
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|e| E::Mul(bx(scalar.clone()), bx(e)))
                    .collect()
            })
            .collect();
        total = Some(match total {
            None => term,
            Some(acc) if shape(&acc) == shape(&term) => acc
                .into_iter()
                .zip(term)
                .map(|(a, b)| {
                    a.into_iter()
                        .zip(b)
                        .map(|(x, y)| E::Add(bx(x), bx(y)))
                        .collect()
                })
                .collect(),
            Some(_) => return None,
        });
    }
    Some(
        total?
            .into_iter()
            .map(|r| r.into_iter().map(Value::Expr).collect())
            .collect(),
    )
}

/// A value with a top-level `=`: Ok(None) when there is none.
///
/// `x = e` is an assignment, `f(x) = e`, `(p, q) = e` and `S_ABC : S = 7 : 32`
/// name the value `e`; a chain ending in a constant (`7 + 5 = 12`,
/// `x = 2 + 3 = 5`, `∠ABC = 40`) is its last member, as math-verify takes it;
/// anything else with two sides is an equation.
fn equation(s: &str, depth: usize) -> Result<Option<Value>, ()> {
    let eq = split_top(s, '=').ok_or(())?;
    if eq.len() < 2 {
        return Ok(None);
    }
    if eq.len() > 8 {
        return Err(());
    }
    let n = eq.len();
    if n == 2 && is_var_name(eq[0]) {
        if let Ok(r) = parse_expr(eq[1]) {
            return Ok(Some(Value::Eq(Expr::Var(eq[0].to_string()), r)));
        }
    }
    if n == 2 && is_name_lhs(eq[0]) {
        return parse_value_d(eq[1], depth + 1).map(Some);
    }
    let last = parse_expr(eq[n - 1]);
    if let Some(v) = last.as_ref().ok().filter(|v| is_const(v)) {
        if n > 2 || parse_expr(eq[0]).map_or(true, |e| is_const(&e)) {
            return Ok(Some(Value::Expr(v.clone())));
        }
    }
    if n == 2 && parse_expr(eq[0]).is_err() && !eq[0].contains(['<', '>', '≤', '≥', '≠']) {
        // a name that is no expression: "S_MBCN:S = 7:32", "A:B = 1"
        if let Ok(v) = parse_value_d(eq[1], depth + 1) {
            return Ok(Some(v));
        }
    }
    if n > 2 {
        return Err(());
    }
    match (parse_expr(eq[0]), last) {
        (Ok(l), Ok(r)) => Ok(Some(Value::Eq(l, r))),
        _ => Err(()),
    }
}

/// Items of a bracket's content: split at commas, else at semicolons ("(3; 2)").
fn list_items(inner: &str) -> Result<Vec<&str>, ()> {
    let parts = split_top(inner, ',').ok_or(())?;
    if parts.len() > 1 {
        return Ok(parts);
    }
    split_top(inner, ';').ok_or(())
}

/// An interval `(a, b]` or a union of them, with constant ends.
fn intervals(v: &Value) -> Option<Vec<Interval>> {
    let one = |v: &Value| match v {
        Value::Seq(o, c, xs) if xs.len() == 2 => {
            let end = |x: &Value| match x {
                Value::Expr(e) if is_const(e) => Some(crate::expr::eval(e, &[])),
                _ => None,
            };
            let (lo, hi) = (end(&xs[0])?, end(&xs[1])?);
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return None;
            }
            Some(Interval {
                lo,
                lo_closed: *o == '[',
                hi,
                hi_closed: *c == ']',
            })
        }
        _ => None,
    };
    match v {
        Value::Union(xs) => xs.iter().map(one).collect(),
        v => one(v).map(|i| vec![i]),
    }
}

/// A constant expression.
pub(crate) fn is_number(v: &Value) -> bool {
    matches!(v, Value::Expr(e) if is_const(e))
}

/// The points a value describes on the line, when it is an inequality in one
/// variable, an interval, or a union of them.
fn region(v: &Value) -> Option<Region<'_>> {
    match v {
        Value::Ineq(q) => Some(Region::Ineq(q)),
        Value::Union(xs) => match intervals(v) {
            Some(iv) => Some(Region::Intervals(iv)),
            None => xs
                .iter()
                .map(region)
                .collect::<Option<Vec<_>>>()
                .map(Region::Any),
        },
        v => intervals(v).map(Region::Intervals),
    }
}

/// Equal as sets: every item of each has an equal in the other (so repeats
/// do not count, as in a set).
fn match_sets(a: &[Value], b: &[Value], tol: f64) -> bool {
    if a.is_empty() || b.is_empty() {
        return a.is_empty() && b.is_empty();
    }
    a.iter()
        .all(|p| b.iter().any(|q| compare(p, q, tol).is_some()))
        && b.iter()
            .all(|q| a.iter().any(|p| compare(p, q, tol).is_some()))
}

/// Does the gold state a relation (so an answer as a set of points may match it)?
fn has_relation(v: &Value) -> bool {
    match v {
        Value::Ineq(_) => true,
        Value::Union(xs) => xs.iter().any(has_relation),
        _ => false,
    }
}

fn all_pairs(a: &[Value], b: &[Value], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| compare(x, y, tol).is_some())
}

/// The value an equation names: `x = 5`, `5 = x`, `m + n = 109`.
fn named_value<'e>(l: &'e Expr, r: &'e Expr) -> Option<&'e Expr> {
    match (l, r) {
        (Expr::Var(_), e) | (e, Expr::Var(_)) => Some(e),
        (q, e) if names_quantity(q) && is_const(e) => Some(e),
        _ => None,
    }
}

fn vector_entries(m: &[Vec<Value>]) -> Option<Vec<Value>> {
    if m.len() == 1 {
        Some(m[0].clone())
    } else if m.iter().all(|r| r.len() == 1) {
        Some(m.iter().map(|r| r[0].clone()).collect())
    } else {
        None
    }
}

/// Some(method) when answer `a` is equivalent to gold `b`. Symmetric but for
/// one rule: an interval answer matches an inequality gold, an inequality
/// answer does not match an interval gold (the question asked for the set
/// notation; math-verify's default).
pub(crate) fn compare(a: &Value, b: &Value, tol: f64) -> Option<&'static str> {
    use crate::expr::Expr as E;
    use Value::*;
    match (a, b) {
        (Expr(x), Expr(y)) => expr_equal(x, y, tol),
        (Seq(o1, c1, x), Seq(o2, c2, y)) => (o1 == o2 && c1 == c2 && all_pairs(x, y, tol))
            .then_some(if o1 == &'(' && c1 == &')' {
                "tuple"
            } else {
                "interval"
            }),
        (Seq('(', ')', x), Matrix(m)) => all_pairs(x, &vector_entries(m)?, tol).then_some("matrix"),
        (Matrix(m), Seq('(', ')', y)) => all_pairs(&vector_entries(m)?, y, tol).then_some("matrix"),
        (Set(x, _), Set(y, _)) => match_sets(x, y, tol).then_some("set"),
        (Union(x), Union(y)) => {
            if match_sets(x, y, tol) {
                Some("set")
            } else if has_relation(b) {
                same_region(&region(a)?, &region(b)?).then_some("interval")
            } else {
                None
            }
        }
        (Set(x, _), other) if x.len() == 1 => compare(&x[0], other, tol),
        (other, Set(y, _)) if y.len() == 1 => compare(other, &y[0], tol),
        (Matrix(x), Matrix(y)) => (x.len() == y.len()
            && x.iter().zip(y).all(|(r, s)| all_pairs(r, s, tol)))
        .then_some("matrix"),
        (Eq(l1, r1), Eq(l2, r2)) => {
            // the same equation up to moving terms and a non-zero factor
            let d1 = E::Sub(Box::new(l1.clone()), Box::new(r1.clone()));
            let d2 = E::Sub(Box::new(l2.clone()), Box::new(r2.clone()));
            let same = (l1 == l2 && r1 == r2) || proportional(&d1, &d2, tol);
            same.then_some("equation")
        }
        (Eq(l, r), other) => compare(&Expr(named_value(l, r)?.clone()), other, tol),
        (other, Eq(l, r)) => compare(other, &Expr(named_value(l, r)?.clone()), tol),
        (Ineq(x), Ineq(y)) => same_ineq(x, y).then_some("inequality"),
        (_, Ineq(_)) => same_region(&region(a)?, &region(b)?).then_some("interval"),
        // a bare list in order is the tuple: "x = 3, y = 2" or "3, 2" and "(3, 2)"
        (Set(xs, Kind::List), Seq('(', ')', ys)) | (Seq('(', ')', xs), Set(ys, Kind::List))
            if xs.len() > 1 =>
        {
            all_pairs(xs, ys, tol).then_some("tuple")
        }
        (Text(x), Text(y)) => (x == y).then_some("text"),
        (Rel(x), Rel(y)) => (x == y).then_some("string"),
        _ => None,
    }
}
