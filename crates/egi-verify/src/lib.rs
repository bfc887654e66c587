//! Math answer verification for reasoning-LLM research, with no ML dependencies.
//!
//! * [`extract_answer`] takes the final answer out of a model response
//!   (last `\boxed{}`/`\fbox{}`, GSM8K `#### N`, "the answer is ...", the whole
//!   response when it is a bare answer, else the last number).
//! * [`verify`] / [`verify_any`] compare it with a gold answer: normalised
//!   string, then numbers with a relative tolerance, then structure (tuples,
//!   intervals, sets, matrices, equations) and algebraic expressions by
//!   evaluation at seeded random points.
//! * [`gold_from_record`] reads the gold answer of GSM8K / MATH / AIME / AMC records.
//!
//! Every call is bounded: answers over [`MAX_ANSWER_BYTES`] are refused for
//! parsing, LaTeX and expression nesting and sizes are capped, and extraction
//! is linear in the response length. Nothing panics on any input; a parse
//! failure is reported as `UnparsableAnswer` / `UnparsableGold`, never `Wrong`.

mod expr;
mod norm;
mod value;

pub use norm::MAX_ANSWER_BYTES;
use serde::{Deserialize, Serialize};

/// Outcome of one verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Correct,
    Wrong,
    UnparsableAnswer,
    UnparsableGold,
}

/// How the answer was taken out of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractMethod {
    Boxed,
    Gsm8kHash,
    AnswerPhrase,
    LastNumber,
    Whole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracted {
    pub text: String,
    pub method: ExtractMethod,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub status: Status,
    /// What was taken from the answer text.
    pub extracted: Option<Extracted>,
    pub answer_normalized: Option<String>,
    pub gold_normalized: Option<String>,
    /// Which equivalence rule decided: "string", "numeric", "expression",
    /// "tuple", "interval", "set", "matrix", "equation", "text".
    pub method: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// The answer must follow a closing `</think>`.
    pub require_think_close: bool,
    /// Relative tolerance of numeric comparison (default 1e-6).
    pub rel_tol: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            require_think_close: false,
            rel_tol: 1e-6,
        }
    }
}

/// Largest extracted text we keep from a phrase / hash line.
const MAX_LINE: usize = 2_000;

/// Content of the last well-formed `\boxed{...}` / `\fbox{...}` (or `\boxed N`).
fn last_boxed(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut end = text.len();
    // try at most a few occurrences from the end: linear work overall
    for _ in 0..4 {
        let hay = &text[..end];
        let p1 = hay.rfind("\\boxed");
        let p2 = hay.rfind("\\fbox");
        let (pos, len) = match (p1, p2) {
            (Some(a), Some(c)) if c > a => (c, 5),
            (Some(a), _) => (a, 6),
            (None, Some(c)) => (c, 5),
            (None, None) => return None,
        };
        end = pos;
        let mut i = pos + len;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            let st = i + 1;
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'\\' => j += 1,
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            let inner = text[st..j].trim();
                            if !inner.is_empty() {
                                return Some(inner.to_string());
                            }
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        } else if i > pos + len && i < b.len() {
            // "\boxed 5"
            let rest = &text[i..];
            let stop = rest
                .find(|c: char| c.is_whitespace() || c == '$')
                .unwrap_or(rest.len());
            let t = rest[..stop].trim_end_matches(['.', ',']);
            if !t.is_empty() {
                return Some(t.to_string());
            }
        }
    }
    None
}

fn hash_answer(text: &str) -> Option<String> {
    let p = text.rfind("####")?;
    let rest = &text[p + 4..];
    let line = rest.lines().next().unwrap_or("");
    let t = line.trim().trim_end_matches('.').trim();
    (!t.is_empty() && t.len() <= MAX_LINE).then(|| t.to_string())
}

fn phrase_answer(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    const PHRASES: &[&str] = &[
        "final answer is",
        "the answer is",
        "final answer:",
        "answer is:",
        "answer:",
    ];
    let (pos, len) = PHRASES
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, p.len())))
        .max_by_key(|x| (x.0 + x.1, x.1))?;
    let rest = text[pos + len..].trim_start_matches([' ', ':', '*', '\t']);
    let mut line = rest.lines().next().unwrap_or("").trim();
    if let Some(k) = line.find(". ") {
        line = &line[..k];
    }
    let mut t = line.trim().trim_end_matches(['.', '*']).trim();
    for (a, b) in [("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(x) = t.strip_prefix(a).and_then(|x| x.strip_suffix(b)) {
            t = x.trim();
        }
    }
    let t = t.trim_end_matches(['.', ',']).trim();
    (!t.is_empty() && t.len() <= MAX_LINE).then(|| t.to_string())
}

fn mathy(v: &value::Value) -> bool {
    use value::Value::*;
    match v {
        Expr(_) | Eq(..) => true,
        Seq(_, _, xs) | Set(xs, _) | Union(xs) => xs.iter().all(mathy),
        Matrix(rows) => rows.iter().flatten().all(mathy),
        Text(_) | Rel(_) => false,
    }
}

/// The whole response, when it is itself a short bare answer.
fn whole_answer(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() || t.len() > 200 || t.contains('\n') {
        return None;
    }
    let words = t.split_whitespace().count();
    let prose = t
        .split_whitespace()
        .filter(|w| w.len() >= 2 && w.chars().all(|c| c.is_alphabetic()))
        .count();
    let n = norm::normalize(t).ok()?;
    let v = value::parse_value(&n).ok()?;
    let ok = match &v {
        value::Value::Text(_) => words <= 3,
        value::Value::Rel(_) => prose == 0,
        v => mathy(v) && prose <= 1,
    };
    ok.then(|| t.to_string())
}

fn last_number(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut j = b.iter().rposition(|c| c.is_ascii_digit())?;
    let end = j + 1;
    loop {
        if j == 0 {
            break;
        }
        let c = b[j - 1];
        let ok = c.is_ascii_digit()
            || ((c == b'.' || c == b',' || c == b'/')
                && j >= 2
                && b[j - 2].is_ascii_digit()
                && b[j].is_ascii_digit());
        if !ok {
            break;
        }
        j -= 1;
    }
    if j > 0 && b[j - 1] == b'-' {
        j -= 1;
    }
    let s: String = text[j..end].chars().filter(|&c| c != ',').collect();
    Some(s)
}

/// Extract the final answer from a model response: last `\boxed{...}`/`\fbox{...}`
/// (brace matching), GSM8K `#### N`, "The answer is ..."/"final answer is ...",
/// the whole response when it is a short bare answer, else the last number.
pub fn extract_answer(response: &str, opts: &Options) -> Option<Extracted> {
    let mut text = response;
    if opts.require_think_close {
        let p = text.rfind("</think>")?;
        text = &text[p + "</think>".len()..];
    }
    let found = |t: String, m| Some(Extracted { text: t, method: m });
    if let Some(t) = last_boxed(text) {
        return found(t, ExtractMethod::Boxed);
    }
    if let Some(t) = hash_answer(text) {
        return found(t, ExtractMethod::Gsm8kHash);
    }
    if let Some(t) = phrase_answer(text) {
        return found(t, ExtractMethod::AnswerPhrase);
    }
    if let Some(t) = whole_answer(text) {
        return found(t, ExtractMethod::Whole);
    }
    last_number(text).and_then(|t| found(t, ExtractMethod::LastNumber))
}

/// The gold answer text: as-is, or extracted when it contains `\boxed` or `####`.
fn gold_text(gold: &str) -> Option<String> {
    if gold.contains("\\boxed") || gold.contains("\\fbox") {
        if let Some(t) = last_boxed(gold) {
            return Some(t);
        }
    }
    if gold.contains("####") {
        return hash_answer(gold);
    }
    let t = gold.trim();
    (!t.is_empty()).then(|| t.to_string())
}

struct Prepared {
    norm: String,
    value: Option<value::Value>,
}

fn prepare(text: &str) -> Option<Prepared> {
    let norm = norm::normalize(text).ok()?;
    let value = value::parse_value(&norm).ok();
    Some(Prepared { norm, value })
}

fn decide(
    extracted: &Option<Extracted>,
    ans: &Option<Prepared>,
    gold: &str,
    opts: &Options,
) -> Verdict {
    let mut v = Verdict {
        status: Status::UnparsableGold,
        extracted: extracted.clone(),
        answer_normalized: ans.as_ref().map(|a| a.norm.clone()),
        gold_normalized: None,
        method: None,
    };
    let Some(g) = gold_text(gold).and_then(|g| prepare(&g)) else {
        return v;
    };
    v.gold_normalized = Some(g.norm.clone());
    let Some(a) = ans else {
        v.status = Status::UnparsableAnswer;
        return v;
    };
    if a.norm == g.norm {
        v.status = Status::Correct;
        v.method = Some("string".into());
        return v;
    }
    // two different integers are never equal, whatever the tolerance
    let is_int = |s: &str| {
        let d = s.strip_prefix('-').unwrap_or(s);
        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
    };
    if is_int(&a.norm) && is_int(&g.norm) {
        let same =
            matches!((a.norm.parse::<i128>(), g.norm.parse::<i128>()), (Ok(x), Ok(y)) if x == y);
        v.status = if same { Status::Correct } else { Status::Wrong };
        v.method = Some("numeric".into());
        return v;
    }
    let Some(gv) = &g.value else {
        v.status = Status::UnparsableGold;
        return v;
    };
    let Some(av) = &a.value else {
        v.status = Status::UnparsableAnswer;
        return v;
    };
    let tol = if opts.rel_tol.is_finite() && opts.rel_tol >= 0.0 {
        opts.rel_tol
    } else {
        1e-6
    };
    match value::compare(av, gv, tol) {
        Some(m) => {
            v.status = Status::Correct;
            v.method = Some(m.into());
        }
        None => v.status = Status::Wrong,
    }
    v
}

fn prepare_answer(response: &str, opts: &Options) -> (Option<Extracted>, Option<Prepared>) {
    let ex = extract_answer(response, opts);
    let prep = ex.as_ref().and_then(|e| prepare(&e.text));
    (ex, prep)
}

/// Verify a model response against a gold answer string (the gold is taken
/// as-is, or via extraction if it contains `\boxed` or `####`).
pub fn verify(response: &str, gold: &str, opts: &Options) -> Verdict {
    let (ex, prep) = prepare_answer(response, opts);
    decide(&ex, &prep, gold, opts)
}

/// Like [`verify`] but with several acceptable golds: Correct if any gold
/// matches; otherwise Wrong if any gold parsed, else UnparsableGold.
pub fn verify_any(response: &str, golds: &[String], opts: &Options) -> Verdict {
    let (ex, prep) = prepare_answer(response, opts);
    let mut best: Option<Verdict> = None;
    for g in golds {
        let v = decide(&ex, &prep, g, opts);
        if v.status == Status::Correct {
            return v;
        }
        let rank = |s: Status| match s {
            Status::Correct => 0,
            Status::Wrong => 1,
            Status::UnparsableAnswer => 2,
            Status::UnparsableGold => 3,
        };
        if best
            .as_ref()
            .is_none_or(|b| rank(v.status) < rank(b.status))
        {
            best = Some(v);
        }
    }
    best.unwrap_or(Verdict {
        status: Status::UnparsableGold,
        extracted: ex,
        answer_normalized: prep.map(|p| p.norm),
        gold_normalized: None,
        method: None,
    })
}

fn num_to_string(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Gold answer of a benchmark record: GSM8K `{"answer": "... #### 1,234"}` -> "1234";
/// MATH-500 `{"answer"}`; AIME `{"answer": int or str}`; AMC `{"answer": 9.0}` -> "9";
/// MATH test `{"solution"}` -> last `\boxed`; generic `{"answer"}`. None if absent.
pub fn gold_from_record(rec: &serde_json::Value) -> Option<String> {
    for key in [
        "answer",
        "gold",
        "expected_answer",
        "final_answer",
        "target",
    ] {
        match rec.get(key) {
            Some(serde_json::Value::String(s)) => {
                if s.contains("####") {
                    let t = hash_answer(s)?;
                    let t = t.trim();
                    return Some(if norm_is_thousands(t) {
                        t.replace(',', "")
                    } else {
                        t.to_string()
                    });
                }
                let t = s.trim();
                if !t.is_empty() {
                    return Some(t.to_string());
                }
            }
            Some(serde_json::Value::Number(n)) => return Some(num_to_string(n)),
            _ => {}
        }
    }
    if let Some(serde_json::Value::String(s)) = rec.get("solution") {
        return last_boxed(s);
    }
    None
}

fn norm_is_thousands(s: &str) -> bool {
    s.contains(',')
        && s.trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'.')
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn normalize_examples() {
        for (a, b) in [
            ("\\dfrac{1}{2}", "1/2"),
            ("\\frac12", "1/2"),
            ("10,\\!080", "10080"),
            ("1\\frac{4}{5}", "(1+4/5)"),
            ("106^\\circ", "106"),
            ("5.4 \\text{ cents}", "5.4"),
            ("\\text{(B)}", "B"),
            ("2.50", "2.5"),
        ] {
            assert_eq!(norm::normalize(a).unwrap(), b, "{a}");
        }
    }
}
