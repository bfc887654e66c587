//! Seeded arithmetic word problems with exact integer answers: RL training data for small
//! models, written as the problem/answer JSONL that [`crate::data::load_problems`] reads.
//!
//! A problem is a chain `start op1 b1 op2 b2 ...` told as a short story. Two story shapes:
//! a quantity that changes over time ("Mia has 7 marbles. She buys 5 more, then gives away 3.")
//! and a chain of comparisons ("Ana reads 8 pages on Monday. On Tuesday she reads 3 more pages
//! than on Monday..."). Scenarios, names, units, connectors and phrasings are drawn at random so
//! that no single template dominates. Every intermediate value is a positive integer:
//! subtraction never reaches zero and division is always exact.
//!
//! Problem `i` draws from its own ChaCha stream of the seed, so the first 100 problems of
//! `n = 1000` are the problems of `n = 100`.

use std::collections::HashSet;

use anyhow::{bail, Context, Result};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One arithmetic operation of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Add, Op::Sub, Op::Mul, Op::Div];

    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
        }
    }

    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
        }
    }

    fn apply(self, a: u64, b: u64) -> u64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
        }
    }
}

/// Longest chain: the time-marker and comparison sequences have seven entries.
pub const MAX_STEPS: usize = 6;

/// What to generate. `Default` is the `egi data arith` default.
#[derive(Debug, Clone, PartialEq)]
pub struct ArithOptions {
    pub n: usize,
    pub seed: u64,
    pub min_steps: usize,
    pub max_steps: usize,
    pub ops: Vec<Op>,
    /// Start values and add/sub operands are drawn from 1..=max_operand.
    pub max_operand: u64,
    /// Multipliers and divisors are drawn from 2..=max_factor.
    pub max_factor: u64,
    /// No start, intermediate or final value exceeds this (bounds chains of multiplications).
    pub max_value: u64,
    /// Scenario names to draw from ([`scenario_names`]); empty means all.
    pub scenarios: Vec<String>,
    /// Add a worked solution to every problem ([`ArithProblem::solution`]). The problems are
    /// the same with and without: solutions draw from their own random stream.
    pub solutions: bool,
}

impl Default for ArithOptions {
    fn default() -> Self {
        ArithOptions {
            n: 1000,
            seed: 0,
            min_steps: 1,
            max_steps: 3,
            ops: Op::ALL.to_vec(),
            max_operand: 20,
            max_factor: 12,
            max_value: 1000,
            scenarios: vec![],
            solutions: false,
        }
    }
}

/// One generated problem; serialises to one JSONL record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArithProblem {
    pub id: String,
    pub problem: String,
    /// The exact answer, a non-negative integer in decimal.
    pub answer: String,
    pub steps: usize,
    /// Fully parenthesised, e.g. `((5 + 3) * 2)`.
    pub expression: String,
    pub scenario: String,
    /// With `solutions`: one line per step, each ending in the step's value, then a closing
    /// line with the answer in `\boxed{}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
}

/// `"2"` or `"1..3"` (also `"1..=3"`, `"1-3"`) to (min, max) steps.
pub fn parse_steps(s: &str) -> Result<(usize, usize)> {
    let t = s.trim();
    let usage = || {
        format!(
            "\"{s}\": expected a step count N or MIN..MAX with 1 <= MIN <= MAX <= {MAX_STEPS}, \
             e.g. 2 or 1..3"
        )
    };
    let num = |p: &str| -> Result<usize> {
        p.trim()
            .parse::<usize>()
            .with_context(|| format!("\"{}\" is not a whole number", p.trim()))
            .with_context(usage)
    };
    let (lo, hi) = if let Some((a, b)) = t.split_once("..=").or_else(|| t.split_once("..")) {
        (num(a)?, num(b)?)
    } else if let Some((a, b)) = t.split_once('-') {
        (num(a)?, num(b)?)
    } else {
        let k = num(t)?;
        (k, k)
    };
    if lo == 0 || lo > hi || hi > MAX_STEPS {
        bail!(usage());
    }
    Ok((lo, hi))
}

/// `"add,sub,mul,div"` (also `+ - * x /`) to operations, without duplicates.
pub fn parse_ops(s: &str) -> Result<Vec<Op>> {
    let mut ops = vec![];
    for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let op = match p.to_ascii_lowercase().as_str() {
            "add" | "+" | "plus" => Op::Add,
            "sub" | "-" | "minus" => Op::Sub,
            "mul" | "*" | "x" | "times" => Op::Mul,
            "div" | "/" | "divide" => Op::Div,
            _ => bail!("unknown operation \"{p}\": use add, sub, mul, div (comma-separated)"),
        };
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    if ops.is_empty() {
        bail!("no operations in \"{s}\": use add, sub, mul, div (comma-separated)");
    }
    Ok(ops)
}

/// Names of all scenarios, for [`ArithOptions::scenarios`].
pub fn scenario_names() -> Vec<&'static str> {
    let w = words();
    w.accs
        .iter()
        .map(|a| a.key.as_str())
        .chain(w.cmps.iter().map(|c| c.key.as_str()))
        .collect()
}

/// The records as JSONL, one per line, ending in a newline.
pub fn to_jsonl(problems: &[ArithProblem]) -> String {
    let mut s = String::new();
    for p in problems {
        s.push_str(&serde_json::to_string(p).expect("plain struct serialises"));
        s.push('\n');
    }
    s
}

fn check(o: &ArithOptions) -> Result<()> {
    if o.n == 0 {
        bail!("n must be at least 1");
    }
    if o.min_steps == 0 || o.min_steps > o.max_steps || o.max_steps > MAX_STEPS {
        bail!(
            "steps {}..{}: need 1 <= min <= max <= {MAX_STEPS}",
            o.min_steps,
            o.max_steps
        );
    }
    if o.ops.is_empty() {
        bail!("no operations given");
    }
    if !(1..=1_000_000).contains(&o.max_operand) {
        bail!("max operand {}: must be in 1..=1000000", o.max_operand);
    }
    let muldiv = o.ops.iter().any(|op| matches!(op, Op::Mul | Op::Div));
    // The divisor search is linear in max_factor.
    if muldiv && !(2..=1000).contains(&o.max_factor) {
        bail!(
            "max factor {}: must be in 2..=1000 for mul and div",
            o.max_factor
        );
    }
    if o.max_value < o.max_operand || o.max_value > 1_000_000_000_000 {
        bail!(
            "max value {}: must be at least the max operand ({}) and at most 10^12",
            o.max_value,
            o.max_operand
        );
    }
    let names = scenario_names();
    for s in &o.scenarios {
        if !names.contains(&s.as_str()) {
            bail!("unknown scenario \"{s}\"; known: {}", names.join(", "));
        }
    }
    Ok(())
}

/// `o.n` problems with ids `arith-<seed>-<i>`; deterministic in the options.
pub fn generate(o: &ArithOptions) -> Result<Vec<ArithProblem>> {
    check(o)?;
    let w = words();
    let scen: Vec<Scenario> = w
        .accs
        .iter()
        .map(Scenario::Acc)
        .chain(w.cmps.iter().map(Scenario::Cmp))
        .filter(|s| o.scenarios.is_empty() || o.scenarios.iter().any(|n| n == s.key()))
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(o.n);
    for i in 0..o.n {
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
        rng.set_stream(i as u64);
        // Redraw a text seen before; small knob settings may leave too few distinct problems,
        // then a repeat is kept rather than failing.
        let mut tries = 0;
        let p = loop {
            let k = rng.random_range(o.min_steps..=o.max_steps);
            let chain = draw_chain(&mut rng, o, k).with_context(|| {
                format!(
                    "cannot build a {k}-step problem from {} with operands up to {}, factors up to {} and values up to {}; widen the ranges or add operations",
                    o.ops.iter().map(|op| op.name()).collect::<Vec<_>>().join(","),
                    o.max_operand, o.max_factor, o.max_value
                )
            })?;
            let sc = scen.choose(&mut rng).expect("at least one scenario");
            let mut story = match sc {
                Scenario::Acc(a) => tell_acc(&mut rng, a, &chain),
                Scenario::Cmp(c) => tell_cmp(&mut rng, c, &chain),
            };
            tries += 1;
            if seen.insert(story.text.clone()) || tries >= 50 {
                let solution = o.solutions.then(|| {
                    let mut srng = ChaCha8Rng::seed_from_u64(o.seed ^ SOLUTION_SEED);
                    srng.set_stream(i as u64);
                    solution::solve(&mut srng, &chain, &mut story)
                });
                break ArithProblem {
                    id: format!("arith-{}-{i}", o.seed),
                    problem: story.text,
                    answer: chain.value().to_string(),
                    steps: k,
                    expression: chain.expression(),
                    scenario: sc.key().to_string(),
                    solution,
                };
            }
        };
        out.push(p);
    }
    Ok(out)
}

struct Chain {
    start: u64,
    steps: Vec<(Op, u64)>,
}

impl Chain {
    fn value(&self) -> u64 {
        self.steps
            .iter()
            .fold(self.start, |a, &(op, b)| op.apply(a, b))
    }

    fn expression(&self) -> String {
        let mut e = self.start.to_string();
        for &(op, b) in &self.steps {
            e = format!("({e} {} {b})", op.symbol());
        }
        e
    }
}

fn draw_chain(rng: &mut ChaCha8Rng, o: &ArithOptions, k: usize) -> Option<Chain> {
    // Keep the drawn operation sequence for several value draws, so operations that are often
    // infeasible (a division of an awkward number) are not crowded out.
    for _ in 0..64 {
        let ops: Vec<Op> = (0..k)
            .map(|_| *o.ops.choose(rng).expect("ops checked"))
            .collect();
        for _ in 0..32 {
            if let Some(c) = draw_values(rng, o, &ops) {
                return Some(c);
            }
        }
    }
    None
}

fn draw_values(rng: &mut ChaCha8Rng, o: &ArithOptions, ops: &[Op]) -> Option<Chain> {
    // A first division gets a dividend built as quotient * divisor, so it is always exact and
    // not limited to the few numbers up to max_operand with small divisors.
    let start = if ops[0] == Op::Div {
        rng.random_range(1..=o.max_operand) * rng.random_range(2..=o.max_factor)
    } else {
        rng.random_range(1..=o.max_operand)
    };
    if start > o.max_value {
        return None;
    }
    let mut c = start;
    let mut steps = Vec::with_capacity(ops.len());
    for &op in ops {
        let b = operand(rng, o, op, c)?;
        c = op.apply(c, b);
        steps.push((op, b));
    }
    Some(Chain { start, steps })
}

/// An operand for `op` on `c` keeping the result in 1..=max_value and exact, if one exists.
fn operand(rng: &mut ChaCha8Rng, o: &ArithOptions, op: Op, c: u64) -> Option<u64> {
    let range =
        |rng: &mut ChaCha8Rng, lo: u64, hi: u64| (lo <= hi).then(|| rng.random_range(lo..=hi));
    match op {
        Op::Add => range(rng, 1, o.max_operand.min(o.max_value.saturating_sub(c))),
        Op::Sub => range(rng, 1, o.max_operand.min(c.saturating_sub(1))),
        Op::Mul => range(rng, 2, o.max_factor.min(o.max_value / c.max(1))),
        Op::Div => {
            // checked_rem, not is_multiple_of: the workspace's rust-version is 1.85.
            let ds: Vec<u64> = (2..=o.max_factor.min(c))
                .filter(|&d| c.checked_rem(d) == Some(0))
                .collect();
            ds.choose(rng).copied()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wording.

mod solution;
mod words;
use words::{words, Acc, Cmp};

/// Mixed into the seed of the solutions' random stream, which is separate from the problems'.
const SOLUTION_SEED: u64 = 0x736f_6c75_7469_6f6e;

/// A told problem and what its worked solution needs from the telling.
struct Story {
    text: String,
    /// The template variables at the end of the telling (the person, the unit).
    vars: Vars,
    /// A comparison's entities, the start's first: one per step after it.
    ents: Option<Vec<&'static str>>,
    /// Whether the quantity belongs to the story's person.
    person: bool,
    /// Whether the last step was told as a fair share.
    share: bool,
}

enum Scenario {
    Acc(&'static Acc),
    Cmp(&'static Cmp),
}

impl Scenario {
    fn key(&self) -> &'static str {
        match self {
            Scenario::Acc(a) => &a.key,
            Scenario::Cmp(c) => &c.key,
        }
    }
}

/// Template variables; `{key}` in a template is replaced by its value.
struct Vars(Vec<(&'static str, String)>);

impl Vars {
    fn set(&mut self, k: &'static str, v: impl Into<String>) {
        let v = v.into();
        match self.0.iter_mut().find(|(key, _)| *key == k) {
            Some(e) => e.1 = v,
            None => self.0.push((k, v)),
        }
    }

    /// Set {n} and what agrees with it: {un}, {times}, {frac}.
    fn number(&mut self, n: u64) {
        self.set("n", n.to_string());
        let un = if n == 1 {
            self.get("u1")
        } else {
            self.get("u")
        };
        self.set("un", un);
        self.set(
            "times",
            match n {
                2 => "twice".to_string(),
                3 => "three times".to_string(),
                _ => format!("{n} times"),
            },
        );
        self.set("frac", frac(n));
    }

    fn get(&self, k: &str) -> String {
        self.0
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The template filled in; an unknown variable is a bug in the tables above (the tests
    /// fill every template).
    fn fill(&self, t: &str) -> String {
        let mut out = String::with_capacity(t.len() + 16);
        let mut rest = t;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let j = rest[i..].find('}').expect("closed placeholder") + i;
            let key = &rest[i + 1..j];
            let v = self
                .0
                .iter()
                .find(|(k, _)| *k == key)
                .unwrap_or_else(|| panic!("template \"{t}\": no value for {{{key}}}"));
            out.push_str(&v.1);
            rest = &rest[j + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn frac(n: u64) -> String {
    const F: [&str; 11] = [
        "half",
        "a third",
        "a quarter",
        "a fifth",
        "a sixth",
        "a seventh",
        "an eighth",
        "a ninth",
        "a tenth",
        "an eleventh",
        "a twelfth",
    ];
    match n {
        2..=12 => F[n as usize - 2].to_string(),
        _ => format!("1/{n}"),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, xs: &'a [T]) -> &'a T {
    xs.choose(rng).expect("lists checked non-empty at load")
}

fn pick_line<'a>(rng: &mut ChaCha8Rng, xs: &'a [String]) -> &'a str {
    pick::<String>(rng, xs)
}

fn person_vars(rng: &mut ChaCha8Rng, v: &mut Vars) {
    let (name, female) = *pick(rng, &words().names.people());
    v.set("name", name);
    v.set("sub", if female { "she" } else { "he" });
    v.set("pos", if female { "her" } else { "his" });
    v.set("obj", if female { "her" } else { "him" });
}

fn unit_vars(rng: &mut ChaCha8Rng, units: &[(String, String)], v: &mut Vars) {
    let (one, many) = pick(rng, units);
    v.set("u1", one);
    v.set("u", many);
}

/// Phrasings of one step of an [`Acc`] story: scenario-specific plus the generic ones.
fn acc_phrases(a: &'static Acc, op: Op, b: u64) -> Vec<&'static str> {
    let g = &words().generic;
    let mut ls: Vec<&'static [String]> = vec![];
    match op {
        Op::Add => ls.push(&a.add),
        Op::Sub => ls.push(&a.sub),
        Op::Mul => {
            ls.extend([&a.mul[..], &g.any_mul]);
            if a.person {
                ls.push(&g.person_mul);
            }
            match b {
                2 => ls.push(&g.any_double),
                3 => ls.push(&g.any_triple),
                _ => {}
            }
        }
        Op::Div => {
            ls.extend([&a.div[..], &g.any_div]);
            if a.person {
                ls.push(&g.person_div);
                if b == 2 {
                    ls.push(&g.person_half);
                }
            }
        }
    }
    ls.into_iter().flatten().map(String::as_str).collect()
}

fn tell_acc(rng: &mut ChaCha8Rng, a: &'static Acc, ch: &Chain) -> Story {
    let mut v = Vars(vec![]);
    if a.person {
        person_vars(rng, &mut v);
    }
    unit_vars(rng, &a.units, &mut v);
    let mut steps: &[(Op, u64)] = &ch.steps;

    // The start, or "s groups of b" when the first step is a multiplication.
    let first = steps[0];
    let start =
        if first.0 == Op::Mul && ch.start >= 2 && !a.groups.is_empty() && rng.random_bool(0.5) {
            v.set("s", ch.start.to_string());
            v.number(first.1);
            steps = &steps[1..];
            v.fill(pick_line(rng, &a.groups))
        } else {
            v.number(ch.start);
            v.fill(pick_line(rng, &a.start))
        };

    // A last division may be told as a fair share, which changes the question.
    let shares: Vec<(&str, &str)> = a
        .share
        .iter()
        .chain(if a.person {
            &words().generic.person_share[..]
        } else {
            &[]
        })
        .map(|(c, q)| (c.as_str(), q.as_str()))
        .collect();
    let share = match steps.last() {
        Some(&(Op::Div, _)) if !shares.is_empty() && rng.random_bool(0.5) => {
            Some(*pick(rng, &shares))
        }
        _ => None,
    };

    let mut clauses = vec![];
    for (i, &(op, b)) in steps.iter().enumerate() {
        v.number(b);
        let t = match share {
            Some((c, _)) if i + 1 == steps.len() => c,
            _ => *pick(rng, &acc_phrases(a, op, b)),
        };
        clauses.push(v.fill(t));
    }
    let question = v.fill(match share {
        Some((_, q)) => q,
        None => pick_line(rng, words().list(&a.question)),
    });

    let mut text = start;
    let body = join_clauses(rng, a, &clauses);
    if !body.is_empty() {
        text.push(' ');
        text.push_str(&body);
    }
    text.push(' ');
    text.push_str(&capitalize(&question));
    Story {
        text,
        vars: v,
        ents: None,
        person: a.person,
        share: share.is_some(),
    }
}

/// The clauses as sentences with connectors, with time markers, or as one comma chain.
fn join_clauses(rng: &mut ChaCha8Rng, a: &Acc, cl: &[String]) -> String {
    let lists = &words().lists;
    let m = cl.len();
    if m == 0 {
        return String::new();
    }
    let marks: Option<Vec<String>> = match rng.random_range(0..3) {
        0 => None,
        1 => {
            // Comma chain: "A, then B, and then C."
            let mut s = capitalize(&cl[0]);
            for (i, c) in cl.iter().enumerate().skip(1) {
                s.push_str(match (i + 1 == m, m) {
                    (true, 2) => ", then ",
                    (true, 3) => ", and then ",
                    (true, _) => ", and finally ",
                    (false, _) => ", then ",
                });
                s.push_str(c);
            }
            s.push('.');
            return s;
        }
        _ => match &a.marks {
            Some(ms) if m <= ms.len() => Some(ms[..m].to_vec()),
            Some(_) => None,
            None => match rng.random_range(0..4) {
                0 => {
                    let days = &lists.days;
                    let d = rng.random_range(0..days.len());
                    Some(
                        (0..m)
                            .map(|i| format!("On {},", days[(d + i) % days.len()]))
                            .collect(),
                    )
                }
                1 => {
                    let months = &lists.months;
                    let d = rng.random_range(0..months.len());
                    Some(
                        (0..m)
                            .map(|i| format!("In {},", months[(d + i) % months.len()]))
                            .collect(),
                    )
                }
                2 if m <= lists.parts_of_day.len() => Some(lists.parts_of_day[..m].to_vec()),
                _ if m >= 2 => {
                    // First, Then, Next, ..., Finally.
                    let mid = ["Then", "Next,", "After that,", "Later,"];
                    Some(
                        (0..m)
                            .map(|i| match i {
                                0 => "First,".to_string(),
                                _ if i + 1 == m => "Finally,".to_string(),
                                _ => mid[(i - 1) % mid.len()].to_string(),
                            })
                            .collect(),
                    )
                }
                _ => None,
            },
        },
    };
    let mut out = vec![];
    for (i, c) in cl.iter().enumerate() {
        let s = match (&marks, i) {
            (Some(ms), _) => format!("{} {c}.", ms[i]),
            (None, 0) => format!("{}.", capitalize(c)),
            (None, _) => format!("{} {c}.", pick_line(rng, &lists.connectors)),
        };
        out.push(s);
    }
    out.join(" ")
}

fn indefinite(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

fn tell_cmp(rng: &mut ChaCha8Rng, c: &'static Cmp, ch: &Chain) -> Story {
    let w = words();
    let mut v = Vars(vec![]);
    if c.person {
        person_vars(rng, &mut v);
    }
    unit_vars(rng, &c.units, &mut v);
    if !c.verbs.is_empty() {
        let (v3, v0) = pick(rng, &c.verbs);
        v.set("v", v3);
        v.set("v0", v0);
    }
    let k = ch.steps.len();
    let ents: Vec<&'static str> = if c.seqs.is_empty() {
        // Distinct people.
        let names: Vec<&str> = w.names.all().collect();
        names.choose_multiple(rng, k + 1).copied().collect()
    } else {
        let r = pick(rng, &c.seqs);
        let seq = w.list(r);
        if c.sample {
            seq.choose_multiple(rng, k + 1)
                .map(String::as_str)
                .collect()
        } else if w.wraps(r) {
            let d = rng.random_range(0..seq.len());
            (0..=k).map(|i| seq[(d + i) % seq.len()].as_str()).collect()
        } else {
            seq[..=k].iter().map(String::as_str).collect()
        }
    };
    let set_ent = |v: &mut Vars, i: usize| {
        v.set("e", ents[i]);
        v.set("E", indefinite(ents[i]));
    };
    set_ent(&mut v, 0);
    v.number(ch.start);
    let mut parts = vec![capitalize(&v.fill(pick_line(rng, &c.base)))];
    for (i, &(op, b)) in ch.steps.iter().enumerate() {
        v.number(b);
        let rel = v.fill(pick_line(rng, w.rel(&c.rel).of(op)));
        v.set("rel", rel);
        v.set("prev", ents[i]);
        set_ent(&mut v, i + 1);
        parts.push(capitalize(&v.fill(pick_line(rng, &c.step))));
    }
    parts.push(capitalize(&v.fill(pick_line(rng, w.list(&c.question)))));
    Story {
        text: parts.join(" "),
        vars: v,
        ents: Some(ents),
        person: c.person,
        share: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn opts(n: usize, seed: u64) -> ArithOptions {
        ArithOptions {
            n,
            seed,
            ..ArithOptions::default()
        }
    }

    /// An evaluator independent of the generator: a recursive-descent parser of the stored
    /// expression over i128, refusing inexact division and negative intermediates.
    fn eval(s: &str) -> i128 {
        fn expr(t: &[u8], i: &mut usize) -> i128 {
            while t[*i] == b' ' {
                *i += 1;
            }
            if t[*i] == b'(' {
                *i += 1;
                let a = expr(t, i);
                while t[*i] == b' ' {
                    *i += 1;
                }
                let op = t[*i];
                *i += 1;
                let b = expr(t, i);
                while t[*i] == b' ' {
                    *i += 1;
                }
                assert_eq!(t[*i], b')');
                *i += 1;
                let r = match op {
                    b'+' => a + b,
                    b'-' => a - b,
                    b'*' => a * b,
                    b'/' => {
                        assert!(b != 0 && a % b == 0, "inexact {a} / {b}");
                        a / b
                    }
                    _ => panic!("operator {}", op as char),
                };
                assert!(
                    r >= 0,
                    "negative intermediate in {}",
                    String::from_utf8_lossy(t)
                );
                r
            } else {
                let j = *i;
                while *i < t.len() && t[*i].is_ascii_digit() {
                    *i += 1;
                }
                std::str::from_utf8(&t[j..*i]).unwrap().parse().unwrap()
            }
        }
        let mut i = 0;
        let v = expr(s.as_bytes(), &mut i);
        assert_eq!(i, s.len(), "trailing text in {s}");
        v
    }

    #[test]
    fn same_seed_same_problems_other_seed_differs() {
        let a = generate(&opts(200, 7)).unwrap();
        assert_eq!(a, generate(&opts(200, 7)).unwrap());
        let b = generate(&opts(200, 8)).unwrap();
        let same = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.problem == y.problem)
            .count();
        assert!(same < 5, "{same} identical texts across seeds");
        // A shorter run is a prefix of a longer one.
        assert_eq!(generate(&opts(50, 7)).unwrap()[..], a[..50]);
        assert_eq!(a[3].id, "arith-7-3");
    }

    #[test]
    fn answers_are_exact_nonnegative_integers_of_the_expression() {
        for seed in 0..4 {
            for p in generate(&opts(500, seed)).unwrap() {
                let v: i128 = p.answer.parse().expect("integer answer");
                assert!(v >= 0 && p.answer == v.to_string(), "{p:?}");
                assert_eq!(eval(&p.expression), v, "{p:?}");
                assert_eq!(p.expression.matches('(').count(), p.steps, "{p:?}");
                assert!(v <= 1000, "{p:?}");
                // The verifier accepts the answer as its own gold.
                let vd = egi_verify::verify(
                    &format!("The answer is {}", p.answer),
                    &p.answer,
                    &egi_verify::Options::default(),
                );
                assert_eq!(vd.status, egi_verify::Status::Correct, "{p:?}");
            }
        }
    }

    #[test]
    fn varied_texts_and_templates() {
        let ps = generate(&opts(500, 1)).unwrap();
        let scen: BTreeSet<&str> = ps.iter().map(|p| p.scenario.as_str()).collect();
        assert!(scen.len() >= 15, "{} scenarios: {scen:?}", scen.len());
        let texts: HashSet<&str> = ps.iter().map(|p| p.problem.as_str()).collect();
        assert!(texts.len() >= 400, "{} distinct texts", texts.len());
        // Sentence shapes beyond the scenario: openings after the first sentence differ too.
        let seconds: HashSet<String> = ps
            .iter()
            .filter_map(|p| p.problem.split(". ").nth(1))
            .map(|s| s.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect();
        assert!(
            seconds.len() >= 30,
            "{} second-sentence openings",
            seconds.len()
        );
        for p in &ps {
            assert!(p.problem.ends_with('?'), "{}", p.problem);
            assert!(
                !p.problem.contains('{') && !p.problem.contains("  "),
                "{}",
                p.problem
            );
            assert!(
                p.problem.chars().next().unwrap().is_uppercase(),
                "{}",
                p.problem
            );
        }
    }

    #[test]
    fn steps_in_range_and_balanced() {
        let ps = generate(&opts(600, 2)).unwrap();
        let mut by: BTreeMap<usize, usize> = BTreeMap::new();
        for p in &ps {
            *by.entry(p.steps).or_default() += 1;
        }
        assert_eq!(by.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        for (&k, &c) in &by {
            assert!((150..=250).contains(&c), "{k} steps: {c} of 600");
        }
        let o = ArithOptions {
            n: 100,
            min_steps: 4,
            max_steps: 6,
            ..ArithOptions::default()
        };
        for p in generate(&o).unwrap() {
            assert!((4..=6).contains(&p.steps));
            assert_eq!(eval(&p.expression).to_string(), p.answer);
        }
    }

    #[test]
    fn every_operation_and_knob_is_honoured() {
        for op in Op::ALL {
            let o = ArithOptions {
                n: 100,
                ops: vec![op],
                ..ArithOptions::default()
            };
            for p in generate(&o).unwrap() {
                let syms: BTreeSet<char> = p
                    .expression
                    .chars()
                    .filter(|c| "+-*/".contains(*c))
                    .collect();
                assert_eq!(syms, BTreeSet::from([op.symbol()]), "{p:?}");
            }
        }
        let o = ArithOptions {
            n: 200,
            max_operand: 5,
            max_factor: 3,
            max_value: 60,
            scenarios: vec!["bus".into(), "prices".into()],
            ..ArithOptions::default()
        };
        for p in generate(&o).unwrap() {
            assert!(p.scenario == "bus" || p.scenario == "prices");
            let nums: Vec<u64> = p
                .expression
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            assert!(nums.iter().all(|&x| x <= 60), "{p:?}");
            assert!(p.answer.parse::<u64>().unwrap() <= 60);
        }
    }

    #[test]
    fn bad_options_are_refused_clearly() {
        for s in ["", "0", "x", "3..1", "1..9", "1..", "2..x"] {
            let e = parse_steps(s).unwrap_err();
            assert!(format!("{e:#}").contains("MIN..MAX"), "{s}: {e:#}");
        }
        assert_eq!(parse_steps("2").unwrap(), (2, 2));
        assert_eq!(parse_steps(" 1..3 ").unwrap(), (1, 3));
        assert_eq!(parse_steps("1..=4").unwrap(), (1, 4));
        assert_eq!(parse_steps("2-3").unwrap(), (2, 3));
        assert_eq!(
            parse_ops("add, *,/").unwrap(),
            vec![Op::Add, Op::Mul, Op::Div]
        );
        assert!(format!("{:#}", parse_ops("add,pow").unwrap_err()).contains("pow"));
        assert!(parse_ops(" , ").is_err());
        let bad = |o: ArithOptions| format!("{:#}", generate(&o).unwrap_err());
        assert!(bad(ArithOptions {
            scenarios: vec!["dragons".into()],
            ..opts(5, 0)
        })
        .contains("marbles"));
        assert!(bad(ArithOptions {
            max_factor: 1,
            ..opts(5, 0)
        })
        .contains("max factor"));
        // Impossible: subtraction from 1 never stays positive.
        assert!(bad(ArithOptions {
            ops: vec![Op::Sub],
            max_operand: 1,
            ..opts(5, 0)
        })
        .contains("cannot build"));
    }

    #[test]
    fn every_template_fills() {
        let mut v = Vars(vec![]);
        for (k, x) in [
            ("name", "Mia"),
            ("sub", "she"),
            ("pos", "her"),
            ("obj", "her"),
            ("u", "things"),
            ("u1", "thing"),
            ("s", "3"),
            ("e", "Monday"),
            ("E", "a pen"),
            ("prev", "Sunday"),
            ("v", "runs"),
            ("v0", "run"),
            ("rel", "2 more than"),
            ("i", "1"),
            ("b", "4"),
            ("c", "12"),
            ("x", "8 + 4"),
            ("boxed", "[12]"),
        ] {
            v.set(k, x);
        }
        v.number(4);
        let w = words();
        let mut all: Vec<&str> = vec![];
        let mut add = |l: &'static [String]| all.extend(l.iter().map(String::as_str));
        for a in &w.accs {
            for l in [&a.start, &a.groups, &a.add, &a.sub, &a.mul, &a.div] {
                add(l);
            }
            add(w.list(&a.question));
            a.marks.iter().for_each(|m| add(m));
        }
        for c in &w.cmps {
            for l in [&c.base, &c.step] {
                add(l);
            }
            add(w.list(&c.question));
            Op::ALL.iter().for_each(|&op| add(w.rel(&c.rel).of(op)));
        }
        let g = &w.generic;
        for l in [
            &g.person_mul,
            &g.any_mul,
            &g.any_double,
            &g.any_triple,
            &g.person_div,
            &g.any_div,
            &g.person_half,
        ] {
            add(l);
        }
        let s = &w.solution;
        for l in [
            &s.numbering,
            &s.bare,
            &s.last,
            &s.holder.person,
            &s.holder.thing,
            &s.holder.share,
            &s.holder.cmp,
        ] {
            add(l);
        }
        Op::ALL.iter().for_each(|&op| add(s.op.of(op)));
        let shares = w.accs.iter().flat_map(|a| &a.share);
        for (c, q) in shares.chain(&g.person_share) {
            all.extend([c.as_str(), q.as_str()]);
        }
        for t in all {
            assert!(!v.fill(t).contains(['{', '}']), "{t}");
        }
        // Non-person scenarios must not use the person's pronouns.
        for a in w.accs.iter().filter(|a| !a.person) {
            let q = w.list(&a.question);
            for t in [&a.start[..], &a.add, &a.sub, q].concat() {
                assert!(!t.contains("{sub}") && !t.contains("{name}"), "{t}");
            }
        }
        assert!(scenario_names().len() >= 20);
    }

    /// Whole generated sets, pinned: the same options give the same file in every build. A
    /// change of the word tables or of the draw order changes these on purpose, and then every
    /// study's data with them; say so in the commit.
    #[test]
    fn pinned_sets_do_not_change() {
        use sha2::{Digest, Sha256};
        let sha = |o: ArithOptions| {
            let h = Sha256::digest(to_jsonl(&generate(&o).unwrap()).as_bytes());
            h.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert_eq!(
            sha(ArithOptions::default()),
            "6b97761826458c4ac194cd0e7ccedb29a9b33a728cf2059b60d008755a9fa776"
        );
        assert_eq!(
            sha(ArithOptions {
                n: 400,
                seed: 3,
                max_steps: 6,
                scenarios: ["bus", "reading", "friends", "prices"]
                    .map(String::from)
                    .to_vec(),
                ..ArithOptions::default()
            }),
            "0b558c4979d4c5f1024889d19f7f7fa05129a7be1af36b17a6178cf71259c13f"
        );
    }

    #[test]
    fn file_loads_as_benchmark_with_gold_equal_answer() {
        let ps = generate(&opts(300, 3)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("arith.jsonl");
        std::fs::write(&f, to_jsonl(&ps)).unwrap();
        let loaded = crate::data::load_problems(&crate::data::DataSource::File(f), None).unwrap();
        assert_eq!(loaded.len(), ps.len());
        for (l, p) in loaded.iter().zip(&ps) {
            assert_eq!((&l.id, &l.problem, &l.gold), (&p.id, &p.problem, &p.answer));
        }
        let first: serde_json::Value =
            serde_json::from_str(to_jsonl(&ps[..1]).lines().next().unwrap()).unwrap();
        let keys: Vec<&str> = first
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            ["id", "problem", "answer", "steps", "expression", "scenario"]
        );
    }

    fn with_solutions(n: usize, seed: u64) -> ArithOptions {
        ArithOptions {
            n,
            seed,
            max_steps: 4,
            solutions: true,
            ..ArithOptions::default()
        }
    }

    /// Each step line is `... a OP b = c` with c the exact value of `a OP b`, a the previous
    /// line's c (the chain's start first), the last c the answer; the closing line's boxed
    /// answer is what the verifier reads and marks correct.
    #[test]
    fn solutions_are_exact_step_by_step_and_verified() {
        let vopts = egi_verify::Options::default();
        for seed in [0, 7] {
            for p in generate(&with_solutions(1500, seed)).unwrap() {
                let sol = p.solution.as_deref().unwrap();
                let lines: Vec<&str> = sol.lines().collect();
                assert_eq!(lines.len(), p.steps + 1, "{sol}");
                let start: String = p
                    .expression
                    .trim_start_matches('(')
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let mut prev: i128 = start.parse().unwrap();
                for l in &lines[..p.steps] {
                    let (lhs, c) = l.rsplit_once(" = ").unwrap_or_else(|| panic!("{l}"));
                    let c: i128 = c
                        .parse()
                        .unwrap_or_else(|_| panic!("line does not end in its value: {l}"));
                    let toks: Vec<&str> = lhs.rsplitn(4, ' ').collect();
                    let (b, sym, a): (i128, &str, i128) =
                        (toks[0].parse().unwrap(), toks[1], toks[2].parse().unwrap());
                    let expect = match sym {
                        "+" => a + b,
                        "-" | "\u{2212}" => a - b,
                        "*" | "\u{d7}" => a * b,
                        "/" | "\u{f7}" => {
                            assert_eq!(a % b, 0, "{l}");
                            a / b
                        }
                        _ => panic!("unknown operator in {l}"),
                    };
                    assert_eq!((a, c), (prev, expect), "{l}\n{sol}");
                    prev = c;
                }
                assert_eq!(prev.to_string(), p.answer, "{sol}");
                let last = lines[p.steps];
                assert!(last.contains(&format!("\\boxed{{{}}}", p.answer)), "{last}");
                let v = egi_verify::verify(sol, &p.answer, &vopts);
                assert_eq!(v.status, egi_verify::Status::Correct, "{sol}");
            }
        }
    }

    #[test]
    fn solutions_leave_the_problems_unchanged() {
        let mut o = with_solutions(500, 4);
        let with = generate(&o).unwrap();
        o.solutions = false;
        let without = generate(&o).unwrap();
        for (w, p) in with.iter().zip(&without) {
            assert!(p.solution.is_none());
            assert_eq!(
                ArithProblem {
                    solution: None,
                    ..w.clone()
                },
                *p
            );
        }
        let rec: serde_json::Value =
            serde_json::from_str(to_jsonl(&with[..1]).lines().next().unwrap()).unwrap();
        assert_eq!(rec["solution"].as_str(), with[0].solution.as_deref());
    }

    /// Many layouts: numbered and unnumbered, every closing line, both symbol sets, and lines
    /// worded by the equation, the operation and the holder, in every scenario.
    #[test]
    fn solutions_vary_in_layout_and_wording() {
        let ps = generate(&with_solutions(3000, 1)).unwrap();
        let sols: Vec<&str> = ps.iter().map(|p| p.solution.as_deref().unwrap()).collect();
        let s = &words().solution;
        let has = |f: &dyn Fn(&str) -> bool| sols.iter().filter(|x| f(x)).count();
        assert!(has(&|x| x.starts_with("Step 1: ")) > 300);
        assert!(has(&|x| x.starts_with("1. ")) > 300);
        assert!(has(&|x| x.contains("\u{d7}") || x.contains("\u{f7}")) > 100);
        for l in &s.last {
            let head = &l[..l.find("{boxed}").unwrap()];
            assert!(
                has(&|x| x.lines().last().unwrap().starts_with(head)) > 100,
                "{l}"
            );
        }
        for t in
            s.op.of(Op::Add)
                .iter()
                .chain(&s.holder.person)
                .chain(&s.holder.thing)
                .chain(&s.holder.cmp)
        {
            let head = t[..t.find('{').unwrap()].trim();
            assert!(
                has(&|x| x.to_lowercase().contains(&head.to_lowercase())) > 20,
                "{t}"
            );
        }
        let first_lines: BTreeSet<&str> = sols.iter().map(|x| x.lines().next().unwrap()).collect();
        assert!(first_lines.len() > 2500, "{}", first_lines.len());
        for key in scenario_names() {
            assert!(ps.iter().any(|p| p.scenario == key), "{key}");
        }
    }
}
