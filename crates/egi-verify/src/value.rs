//! Structured answer values (tuples, intervals, sets, matrices, equations)
//! built from the normalised plain syntax, and their comparison.

use crate::expr::{expr_equal, parse_expr, Expr};

const MAX_ITEMS: usize = 64;
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Expr(Expr),
    /// Tuple or interval: opening and closing bracket kept.
    Seq(char, char, Vec<Value>),
    /// Order-free collection; `bare` when it came from an unbracketed `±`.
    Set(Vec<Value>, bool),
    Matrix(Vec<Vec<Value>>),
    Union(Vec<Value>),
    Eq(Expr, Expr),
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
    let c: Vec<char> = s.chars().collect();
    c.len() == 4 && c[0].is_alphabetic() && c[1] == '(' && c[2].is_alphabetic() && c[3] == ')'
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
            Value::Set(v, true) => out.extend(v),
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
    let parts = split_top(s, ',').ok_or(())?;
    if parts.len() > 1 {
        return Ok(Value::Set(items(parts, depth)?, false));
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
    let first = s.chars().next().unwrap_or(' ');
    if wraps(s) {
        let last = s.chars().last().unwrap_or(' ');
        let inner = &s[first.len_utf8()..s.len() - last.len_utf8()];
        if first == '{' {
            if inner.is_empty() {
                return Ok(Value::Set(vec![], false));
            }
            let parts = split_top(inner, ',').ok_or(())?;
            return Ok(Value::Set(items(parts, depth)?, false));
        }
        let parts = split_top(inner, ',').ok_or(())?;
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
    if s.contains(['≤', '≥', '<', '>', '≠', '≈', '→', '∩', '…', '∈', ':']) {
        return Ok(Value::Rel(s.to_string()));
    }
    let eq = split_top(s, '=').ok_or(())?;
    if eq.len() == 2 {
        if is_var_name(eq[0]) {
            if let Ok(r) = parse_expr(eq[1]) {
                return Ok(Value::Eq(Expr::Var(eq[0].to_string()), r));
            }
        }
        if is_name_lhs(eq[0]) {
            return parse_value_d(eq[1], depth + 1);
        }
        let l = parse_expr(eq[0])?;
        let r = parse_expr(eq[1])?;
        return Ok(Value::Eq(l, r));
    }
    if eq.len() > 2 {
        return Err(());
    }
    if let Some(pos) = s.find('±') {
        let (a, b) = (&s[..pos], &s[pos + '±'.len_utf8()..]);
        let plus = format!("{a}+{b}");
        let minus = format!("{a}-{b}");
        let mut v = Vec::new();
        for t in [plus, minus] {
            match parse_value_d(&t, depth + 1)? {
                Value::Set(x, true) => v.extend(x),
                x => v.push(x),
            }
        }
        return Ok(Value::Set(v, true));
    }
    if let Ok(e) = parse_expr(s) {
        return Ok(Value::Expr(e));
    }
    if is_texty(s) {
        return Ok(Value::Text(s.to_lowercase()));
    }
    Err(())
}

fn match_sets(a: &[Value], b: &[Value], tol: f64) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    'outer: for x in a {
        for (j, y) in b.iter().enumerate() {
            if !used[j] && compare(x, y, tol).is_some() {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

fn all_pairs(a: &[Value], b: &[Value], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| compare(x, y, tol).is_some())
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

/// Some(method) when the two values are equivalent.
pub(crate) fn compare(a: &Value, b: &Value, tol: f64) -> Option<&'static str> {
    use Value::*;
    match (a, b) {
        (Expr(x), Expr(y)) => expr_equal(x, y, tol),
        (Seq(o1, c1, x), Seq(o2, c2, y)) => (o1 == o2 && c1 == c2 && all_pairs(x, y, tol))
            .then_some(if o1 == &'(' && c1 == &')' {
                "tuple"
            } else {
                "interval"
            }),
        (Seq('(', ')', x), Matrix(m)) | (Matrix(m), Seq('(', ')', x)) => {
            let v = vector_entries(m)?;
            all_pairs(x, &v, tol).then_some("matrix")
        }
        (Set(x, _), Set(y, _)) | (Union(x), Union(y)) => match_sets(x, y, tol).then_some("set"),
        (Set(x, _), other) | (other, Set(x, _)) if x.len() == 1 => compare(&x[0], other, tol),
        (Matrix(x), Matrix(y)) => (x.len() == y.len()
            && x.iter().zip(y).all(|(r, s)| all_pairs(r, s, tol)))
        .then_some("matrix"),
        (Eq(l1, r1), Eq(l2, r2)) => {
            let d1 = crate::expr::Expr::Sub(Box::new(l1.clone()), Box::new(r1.clone()));
            let d2 = crate::expr::Expr::Sub(Box::new(l2.clone()), Box::new(r2.clone()));
            let d3 = crate::expr::Expr::Sub(Box::new(r2.clone()), Box::new(l2.clone()));
            let same = (l1 == l2 && r1 == r2)
                || expr_equal(&d1, &d2, tol).is_some()
                || expr_equal(&d1, &d3, tol).is_some();
            same.then_some("equation")
        }
        (Eq(l, r), other) | (other, Eq(l, r)) if !matches!(other, Eq(..)) => match (l, r) {
            (crate::expr::Expr::Var(_), e) | (e, crate::expr::Expr::Var(_)) => {
                compare(&Expr(e.clone()), other, tol)
            }
            _ => None,
        },
        (Text(x), Text(y)) => (x == y).then_some("text"),
        (Rel(x), Rel(y)) => (x == y).then_some("string"),
        _ => None,
    }
}
