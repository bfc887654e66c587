//! Math answer verification for reasoning-LLM research, with no ML dependencies.
//!
//! * [`extract_answer`] takes the final answer out of a model response
//!   (last `\boxed{}`/`\fbox{}`, GSM8K `#### N`, "the answer is ...", the last
//!   inline math, the whole response when it is a bare answer, else the last
//!   number).
//! * [`verify`] / [`verify_any`] compare it with a gold answer: normalised
//!   string, then numbers with a relative tolerance, then structure (tuples,
//!   intervals, inequalities, sets, matrices, equations) and algebraic
//!   expressions by evaluation at seeded random points.
//! * [`gold_from_record`] reads the gold answer of GSM8K / MATH / AIME / AMC records.
//!
//! Every call is bounded: answers over [`MAX_ANSWER_BYTES`] are refused for
//! parsing, LaTeX and expression nesting and sizes are capped, and extraction
//! is linear in the response length. Nothing panics on any input; a parse
//! failure is reported as `UnparsableAnswer` / `UnparsableGold`, never `Wrong`.
//!
//! # Policy
//!
//! What counts as the same answer. The cases that pin each row down are in
//! `tests/graders.rs` and `tests/cases.rs`. Where strong graders (math-verify,
//! Qwen's `math_equal`, NeMo-Skills, MARIO) disagree, the choice and the reason
//! are given.
//!
//! | answer and gold | verdict | why |
//! |---|---|---|
//! | `x \geq 3`, `x >= 3`, `3 \le x`, `-x \le -3` | one answer | an inequality is the set of points it holds on, tested at every boundary and either side of it |
//! | `x < 3` vs `x \le 3`; `(1, 2)` vs `(1, 2]` | different | open and closed ends differ |
//! | interval answer `(3, \infty)` to inequality gold `x > 3` | correct | the same points, in set notation |
//! | inequality answer `x > 3` to interval gold `(3, \infty)` | **wrong** | the question asked for interval notation; math-verify's default (its `allow_set_relation_comp` off); Qwen's grader would accept |
//! | `x < -2 \text{ or } x > 3` vs `(-\infty,-2) \cup (3,\infty)` | correct (interval answer) | "or" joins inequalities into a union, "and" intersects them |
//! | `(3, 2)` vs `(2, 3)` | different | tuples are ordered |
//! | `\{1, 2\}` vs `\{2, 1\}`, `2, 1` | one answer | sets and bare lists are unordered; repeats do not count |
//! | `(1, 2)` vs `\{1, 2\}` | different | a tuple is not a set |
//! | bare list `3, 2` or `x = 3, y = 2` vs tuple `(3, 2)` | correct, in order | math-verify reads `{3, 2}` (LaTeX braces) as the tuple's entries |
//! | `(p, q) = (3, 2)` vs `(3, 2)`; `f(x) = x^2` vs `x^2`; `k = 4` vs `4` | one answer | a name on the left only labels the value |
//! | `m + n = 109` vs `109` | correct | a left side made only of unknowns names the quantity asked for; `x^2 = 4` vs `4` stays wrong |
//! | `7 + 5 = 12`, `x = 2 + 3 = 5`, `\angle ABC = 40^\circ` vs the last member | correct | a chain's value is its last member, as math-verify reads it (even a false chain: `1 = 2 = 3` is 3) |
//! | `x \approx 11` vs `11`; `\frac{1}{3} \approx 0.33` vs `\frac13` | correct | the exact member is the answer: after a name, the right side; else the left |
//! | `y = 2x + 3` vs `4x - 2y + 6 = 0` | one answer | equations are equal when `lhs - rhs` agree up to a non-zero constant factor |
//! | `x^2 = 4` vs `x = 2` | different | not proportional: the solution sets differ |
//! | row `\begin{pmatrix}1&2\end{pmatrix}` vs column `\begin{pmatrix}1\\\\2\end{pmatrix}` | different | shapes differ; a tuple `(1, 2)` matches either, as a vector |
//! | `\begin{pmatrix}..\end{pmatrix} + \begin{pmatrix}..\end{pmatrix}` vs the sum | correct | matrix sums, scalar multiples and products are evaluated |
//! | `25\%` vs `25` and vs `0.25` | correct | with a percent sign both readings stand; `0.25` vs a bare `25` stays wrong (Qwen's grader accepts any factor of 100, math-verify none) |
//! | `1.732` vs `\sqrt3`, `2.6667` vs `\frac83` | correct | a decimal of two or more places for an irrational or repeating value is accepted within 1e-4 relative, as Qwen's grader does |
//! | `3.14` vs `\pi`, `0.33` vs `\frac13`, `100.01` vs `100` | wrong | too coarse (math-verify accepts only when told the rounding); finite decimals must agree to `rel_tol` (1e-6), two integers exactly |
//! | `0.1\overline{6}` vs `\frac16` | correct | a repeating decimal is its exact fraction |
//! | `1000,99` or `0,111` vs `1000.99`, `0.111` | correct | a comma that is no thousands separator may be a decimal comma |
//! | `10,455`, `10{,}455`, `10\,455` vs `10455` | correct | thousands separators |
//! | `\boxed{2}` and `\boxed{5}` on one line vs `2, 5` | correct | boxes on one line joined by symbols or "and"/"or" form one answer; the last box alone is also read, so a correction on the same line still counts |
//! | `\boxed{1}` ... `\boxed{2}` on different lines, or joined by other words | the last box | a later box is a correction |
//! | `\boxed{255}` ... "Final Answer: The final answer is $10,455$" | 10455 | a stated final answer after the last box corrects it |
//! | "The answer is $\frac34$." / "Therefore $x = 5$." with no box | the inline math | the last `$...$`, `\(...\)`, `\[...\]` when no number follows it ("The largest $n$ is 34." takes 34) |
//! | `$ \n 9 \n $` | no answer from it | inline math ends with its line, so numbers inside a broken span are skipped |
//! | "Mia has 12 marbles." / "The answer is: Mia has 12 marbles." | 12 | the last number of the text; a sentence after an answer phrase is read as its only number, and a sentence with two numbers is not guessed at |
//! | "AZYUK2A" | no number | digits inside a word are no number |
//! | `(B) 12`, `\textbf{(B) }12`, `C. x = 42` | the letter and the value | either matches |
//! | text after `<\|im_end\|>`, `</s>`, `<eos>`, `[INST]` | ignored | a new chat turn, not the answer |
//! | `<think>` ... `</think>` answer | the text after `</think>` first | the reasoning may hold trial answers; `require_think_close` makes the close mandatory |
//! | a gold that is a whole worked solution | its extracted answer | as a response's, when the gold is prose |
//! | `\\frac{1}{2}` (backslashes doubled by escaping twice) | `\frac{1}{2}` | known commands are undoubled |

mod expr;
mod extract;
mod ineq;
mod norm;
mod readings;
mod value;

pub use extract::extract_answer;
use extract::{extract_with_alt, hash_answer, last_boxed};
use readings::{form, is_prose, prepare, Form, Prepared};

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
    /// The last `$...$` / `\(...\)` / `\[...\]` of the response, when nothing
    /// numeric follows it.
    InlineMath,
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

impl Verdict {
    /// The verdict as `egi verify` prints it and the Python package returns it: `verdict`,
    /// `extracted`, `extract_method`, `answer_normalized`, `gold_normalized`, `rule`.
    pub fn to_record(&self) -> serde_json::Value {
        serde_json::json!({
            "verdict": self.status,
            "extracted": self.extracted.as_ref().map(|e| &e.text),
            "extract_method": self.extracted.as_ref().map(|e| &e.method),
            "answer_normalized": self.answer_normalized,
            "gold_normalized": self.gold_normalized,
            "rule": self.method,
        })
    }
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

/// Status and deciding rule of one answer reading against one gold reading.
fn judge(a: &Form, g: &Form, tol: f64) -> (Status, Option<&'static str>) {
    if a.norm == g.norm {
        return (Status::Correct, Some("string"));
    }
    // two different integers are never equal, whatever the tolerance
    let is_int = |s: &str| {
        let d = s.strip_prefix('-').unwrap_or(s);
        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
    };
    if is_int(&a.norm) && is_int(&g.norm) {
        let same =
            matches!((a.norm.parse::<i128>(), g.norm.parse::<i128>()), (Ok(x), Ok(y)) if x == y);
        let st = if same { Status::Correct } else { Status::Wrong };
        return (st, Some("numeric"));
    }
    let Some(gv) = &g.value else {
        return (Status::UnparsableGold, None);
    };
    let Some(av) = &a.value else {
        return (Status::UnparsableAnswer, None);
    };
    match value::compare(av, gv, tol) {
        Some(m) => (Status::Correct, Some(m)),
        None => (Status::Wrong, None),
    }
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Correct => 0,
        Status::Wrong => 1,
        Status::UnparsableAnswer => 2,
        Status::UnparsableGold => 3,
    }
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
        answer_normalized: ans.as_ref().map(|a| a.forms[0].norm.clone()),
        gold_normalized: None,
        method: None,
    };
    let g = match gold_text(gold).and_then(|g| prepare(&g)) {
        Some(g) if g.forms[0].value.is_some() => Some(g),
        // a gold that is a whole solution: its answer, extracted as a response's
        // (a malformed short gold stays unparsable)
        other if is_prose(gold) => extract_answer(gold, &Options::default())
            .and_then(|e| prepare(&e.text))
            .filter(|g| g.forms[0].value.is_some())
            .or(other),
        other => other,
    };
    let Some(g) = g else {
        return v;
    };
    v.gold_normalized = Some(g.forms[0].norm.clone());
    let Some(a) = ans else {
        v.status = Status::UnparsableAnswer;
        return v;
    };
    let tol = if opts.rel_tol.is_finite() && opts.rel_tol >= 0.0 {
        opts.rel_tol
    } else {
        1e-6
    };
    // the main readings decide unless another pair of readings matches
    let (st, m) = judge(&a.forms[0], &g.forms[0], tol);
    v.status = st;
    v.method = m.map(String::from);
    if st == Status::Correct {
        return v;
    }
    for (i, x) in a.forms.iter().enumerate() {
        for (j, y) in g.forms.iter().enumerate() {
            if i + j == 0 {
                continue;
            }
            let (st, m) = judge(x, y, tol);
            if rank(st) < rank(v.status) {
                v.status = st;
                v.method = m.map(String::from);
                v.answer_normalized = Some(x.norm.clone());
                v.gold_normalized = Some(y.norm.clone());
                if st == Status::Correct {
                    return v;
                }
            }
        }
    }
    v
}

fn prepare_answer(response: &str, opts: &Options) -> (Option<Extracted>, Option<Prepared>) {
    let Some((ex, alone)) = extract_with_alt(response, opts) else {
        return (None, None);
    };
    let mut prep = prepare(&ex.text);
    // several boxes on a line: the last one alone is a reading too
    if let (Some(p), Some(t)) = (prep.as_mut(), alone) {
        p.forms.extend(norm::normalize(&t).ok().map(form));
    }
    (Some(ex), prep)
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
        answer_normalized: prep.map(|mut p| p.forms.swap_remove(0).norm),
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
