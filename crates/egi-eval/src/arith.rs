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
    ACCS.iter()
        .map(|a| a.key)
        .chain(CMPS.iter().map(|c| c.key))
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
    let scen: Vec<Scenario> = ACCS
        .iter()
        .map(Scenario::Acc)
        .chain(CMPS.iter().map(Scenario::Cmp))
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
            let text = match sc {
                Scenario::Acc(a) => tell_acc(&mut rng, a, &chain),
                Scenario::Cmp(c) => tell_cmp(&mut rng, c, &chain),
            };
            tries += 1;
            if seen.insert(text.clone()) || tries >= 50 {
                break ArithProblem {
                    id: format!("arith-{}-{i}", o.seed),
                    problem: text,
                    answer: chain.value().to_string(),
                    steps: k,
                    expression: chain.expression(),
                    scenario: sc.key().to_string(),
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

type List = &'static [&'static str];

/// A quantity that changes over time. Clauses start lower-case and carry their own subject.
struct Acc {
    key: &'static str,
    /// (singular, plural), one drawn per problem.
    units: &'static [(&'static str, &'static str)],
    /// The holder is a named person ({name}, {sub}, {pos}, {obj}); else a thing (bus, bakery).
    person: bool,
    start: List,
    /// Start sentences for a first multiplication: {s} groups of {n}.
    groups: List,
    add: List,
    sub: List,
    /// Extra scenario-specific phrasings; the generic ones below are always available.
    mul: List,
    div: List,
    /// A last division told as a fair share, with the question it then needs.
    share: &'static [(&'static str, &'static str)],
    question: List,
    /// Own time markers (bus stops); None: the generic days, months, ordinals.
    marks: Option<List>,
}

/// A chain of comparisons: entity i+1 is defined relative to entity i.
struct Cmp {
    key: &'static str,
    units: &'static [(&'static str, &'static str)],
    person: bool,
    /// Entities: consecutive runs of one of these, or, when `sample`, distinct random picks.
    seqs: &'static [List],
    sample: bool,
    /// (third person, base form) verbs for {v} / {v0}.
    verbs: &'static [(&'static str, &'static str)],
    base: List,
    step: List,
    /// Relations for add, sub, mul, div, put in {rel}.
    rel: [List; 4],
    question: List,
}

enum Scenario {
    Acc(&'static Acc),
    Cmp(&'static Cmp),
}

impl Scenario {
    fn key(&self) -> &'static str {
        match self {
            Scenario::Acc(a) => a.key,
            Scenario::Cmp(c) => c.key,
        }
    }
}

const NAMES: &[(&str, bool)] = &[
    ("Mia", true),
    ("Emma", true),
    ("Ava", true),
    ("Sofia", true),
    ("Lena", true),
    ("Aisha", true),
    ("Priya", true),
    ("Yuki", true),
    ("Chloe", true),
    ("Nora", true),
    ("Zara", true),
    ("Maria", true),
    ("Fatima", true),
    ("Grace", true),
    ("Hannah", true),
    ("Ines", true),
    ("Leo", false),
    ("Noah", false),
    ("Omar", false),
    ("Ravi", false),
    ("Ben", false),
    ("Lucas", false),
    ("Mateo", false),
    ("Kenji", false),
    ("Sam", false),
    ("Tom", false),
    ("Jack", false),
    ("Diego", false),
    ("Ethan", false),
    ("Hugo", false),
    ("Ivan", false),
    ("Kofi", false),
];

const DAYS: List = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: List = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const PARTS_OF_DAY: List = &[
    "In the morning,",
    "At noon,",
    "In the afternoon,",
    "In the evening,",
    "At night,",
];
const CONNECTORS: List = &["Then", "After that,", "Later,", "Next,"];
const STOPS: List = &[
    "At the first stop,",
    "At the second stop,",
    "At the third stop,",
    "At the fourth stop,",
    "At the fifth stop,",
    "At the sixth stop,",
];

const PERSON_MUL: List = &[
    "{sub} gets enough {u} to have {times} as many as before",
    "{sub} ends up with {times} as many {u} as {sub} had",
    "the number of {u} {sub} has becomes {times} as large",
];
const ANY_MUL: List = &[
    "the number of {u} grows to {times} what it was",
    "the number of {u} is multiplied by {n}",
];
const ANY_DOUBLE: List = &["the number of {u} doubles"];
const ANY_TRIPLE: List = &["the number of {u} triples"];
const PERSON_DIV: List = &[
    "{sub} splits {pos} {u} into {n} equal groups and keeps one group",
    "{sub} keeps only {frac} of {pos} {u} and gives the rest away",
];
const ANY_DIV: List = &[
    "the number of {u} drops to {frac} of what it was",
    "only {frac} of the {u} are left",
];
const PERSON_HALF: List = &[
    "{sub} gives away half of {pos} {u}",
    "{sub} loses half of {pos} {u}",
];
const PERSON_SHARE: &[(&str, &str)] = &[
    (
        "{sub} shares {pos} {u} equally among {n} friends",
        "How many {u} does each friend get?",
    ),
    (
        "{sub} packs {pos} {u} into {n} bags with the same number in each bag",
        "How many {u} are in each bag?",
    ),
];

const HAVE_NOW: List = &[
    "How many {u} does {name} have now?",
    "How many {u} does {sub} have in the end?",
    "How many {u} does {name} have at the end?",
];

const ACCS: &[Acc] = &[
    Acc {
        key: "marbles",
        units: &[("marble", "marbles")],
        person: true,
        start: &["{name} has {n} {un}.", "{name} keeps {n} {un} in a jar."],
        groups: &["{name} has {s} bags with {n} {un} in each bag."],
        add: &[
            "{sub} wins {n} more {un} in a game",
            "{sub} buys {n} more",
            "{sub} finds {n} more {un} under the sofa",
            "{sub} gets {n} more {un} from {pos} cousin",
        ],
        sub: &[
            "{sub} gives {n} {un} to {pos} brother",
            "{sub} loses {n} {un} in the park",
            "{sub} trades away {n} {un}",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: HAVE_NOW,
        marks: None,
    },
    Acc {
        key: "fruit",
        units: &[
            ("apple", "apples"),
            ("orange", "oranges"),
            ("pear", "pears"),
        ],
        person: true,
        start: &[
            "{name} picks {n} {un} from the orchard.",
            "{name} has {n} {un} in a basket.",
        ],
        groups: &["{name} buys {s} bags of {u} with {n} {un} in each bag."],
        add: &[
            "{sub} picks {n} more",
            "{sub} buys {n} more {un} at the market",
            "{sub} gets {n} {un} from {pos} neighbour",
        ],
        sub: &[
            "{sub} eats {n} of them",
            "{sub} gives {n} {un} to {pos} teacher",
            "{sub} uses {n} {un} to bake a pie",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: HAVE_NOW,
        marks: None,
    },
    Acc {
        key: "coins",
        units: &[("coin", "coins")],
        person: true,
        start: &[
            "{name} has {n} {un} in {pos} pocket.",
            "{name} has a collection of {n} old {un}.",
        ],
        groups: &["{name} has {s} purses with {n} {un} in each purse."],
        add: &[
            "{sub} finds {n} more {un}",
            "{sub} gets {n} {un} as change at the shop",
        ],
        sub: &[
            "{sub} spends {n} {un} on a snack",
            "{sub} drops {n} {un} down a drain",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: HAVE_NOW,
        marks: None,
    },
    Acc {
        key: "stickers",
        units: &[("sticker", "stickers")],
        person: true,
        start: &["{name} has {n} {un} in {pos} album."],
        groups: &["{name} buys {s} sheets of {u} with {n} {un} on each sheet."],
        add: &[
            "{sub} gets {n} new {un} from a magazine",
            "{sub} earns {n} {un} for good work at school",
        ],
        sub: &[
            "{sub} sticks {n} {un} on {pos} notebook",
            "{sub} gives {n} {un} to a classmate",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: HAVE_NOW,
        marks: None,
    },
    Acc {
        key: "bakery",
        units: &[
            ("cookie", "cookies"),
            ("muffin", "muffins"),
            ("bread roll", "bread rolls"),
        ],
        person: false,
        start: &[
            "A bakery bakes {n} {un} in the morning.",
            "A baker puts {n} {un} on the counter.",
        ],
        groups: &["A bakery bakes {s} trays of {u} with {n} {un} on each tray."],
        add: &["the baker bakes {n} more", "the baker makes {n} more {un}"],
        sub: &[
            "customers buy {n} {un}",
            "the baker sells {n} {un}",
            "the baker throws away {n} burnt {un}",
        ],
        mul: &[],
        div: &[],
        share: &[(
            "the {u} are packed equally into {n} boxes",
            "How many {u} are in each box?",
        )],
        question: &[
            "How many {u} does the bakery have now?",
            "How many {u} are there now?",
        ],
        marks: None,
    },
    Acc {
        key: "library",
        units: &[("book", "books")],
        person: false,
        start: &[
            "A school library has {n} {un}.",
            "A small library has {n} {un} on its shelves.",
        ],
        groups: &["A library has {s} shelves with {n} {un} on each shelf."],
        add: &["the library buys {n} new {un}", "a family donates {n} {un}"],
        sub: &[
            "students borrow {n} {un}",
            "the librarian removes {n} damaged {un}",
        ],
        mul: &[],
        div: &[],
        share: &[(
            "the librarian places the {u} equally on {n} shelves",
            "How many {u} are on each shelf?",
        )],
        question: &["How many {u} does the library have now?"],
        marks: None,
    },
    Acc {
        key: "bus",
        units: &[("passenger", "passengers")],
        person: false,
        start: &[
            "A bus leaves the station with {n} {un}.",
            "There are {n} {un} on a bus.",
        ],
        groups: &[],
        add: &[
            "the bus picks up {n} more {un}",
            "the driver lets {n} more {un} on",
        ],
        sub: &["the bus drops off {n} {un}", "the driver lets {n} {un} off"],
        mul: &[],
        div: &[],
        share: &[],
        question: &[
            "How many {u} are on the bus now?",
            "How many {u} are on the bus at the end?",
        ],
        marks: Some(STOPS),
    },
    Acc {
        key: "aquarium",
        units: &[("fish", "fish"), ("goldfish", "goldfish")],
        person: true,
        start: &["{name} has {n} {un} in {pos} aquarium."],
        groups: &["{name} has {s} tanks with {n} {un} in each tank."],
        add: &[
            "{sub} buys {n} more {un} at the pet shop",
            "{sub} adds {n} more {un}",
        ],
        sub: &[
            "{sub} gives {n} {un} to a friend",
            "{sub} moves {n} {un} to a pond",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: HAVE_NOW,
        marks: None,
    },
    Acc {
        key: "stamps",
        units: &[("stamp", "stamps"), ("postcard", "postcards")],
        person: true,
        start: &[
            "{name} collects {u} and has {n} of them.",
            "{name} has {n} {un} in {pos} collection.",
        ],
        groups: &["{name} has {s} albums with {n} {un} in each album."],
        add: &[
            "{sub} buys {n} more at a fair",
            "{sub} receives {n} {un} in the mail",
        ],
        sub: &[
            "{sub} sells {n} {un} to a collector",
            "{sub} swaps away {n} {un}",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: &[
            "How many {u} are in {pos} collection now?",
            "How many {u} does {name} have now?",
        ],
        marks: None,
    },
    Acc {
        key: "school-supplies",
        units: &[
            ("pencil", "pencils"),
            ("crayon", "crayons"),
            ("eraser", "erasers"),
        ],
        person: true,
        start: &["{name} has {n} {un} in {pos} pencil case."],
        groups: &["{name} buys {s} packs of {u} with {n} {un} in each pack."],
        add: &["{sub} buys {n} more", "{sub} finds {n} {un} in {pos} desk"],
        sub: &["{sub} lends {n} {un} to classmates", "{sub} loses {n} {un}"],
        mul: &[],
        div: &[],
        share: &[],
        question: HAVE_NOW,
        marks: None,
    },
    Acc {
        key: "trading-cards",
        units: &[("card", "cards")],
        person: true,
        start: &["{name} has {n} trading {un}."],
        groups: &["{name} buys {s} packs of trading cards with {n} {un} in each pack."],
        add: &[
            "{sub} wins {n} {un} in a tournament",
            "{sub} opens a pack and gets {n} new {un}",
        ],
        sub: &[
            "{sub} trades {n} {un} to a friend",
            "{sub} gives {n} {un} to {pos} little brother",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: &[
            "How many trading {u} does {name} have now?",
            "How many {u} does {name} have now?",
        ],
        marks: None,
    },
    Acc {
        key: "beach",
        units: &[("shell", "shells"), ("pebble", "pebbles")],
        person: true,
        start: &["{name} collects {n} {un} at the beach."],
        groups: &["{name} fills {s} buckets with {n} {un} in each bucket."],
        add: &[
            "{sub} finds {n} more",
            "{sub} picks up {n} more {un} near the rocks",
        ],
        sub: &[
            "{sub} throws {n} {un} back into the sea",
            "{sub} gives {n} {un} to {pos} sister",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: HAVE_NOW,
        marks: None,
    },
    Acc {
        key: "eggs",
        units: &[("egg", "eggs")],
        person: true,
        start: &["Farmer {name} collects {n} {un} from the hens."],
        groups: &["Farmer {name} has {s} cartons with {n} {un} in each carton."],
        add: &["{sub} collects {n} more", "the hens lay {n} more {un}"],
        sub: &[
            "{sub} sells {n} {un} at the market",
            "{sub} uses {n} {un} to make breakfast",
            "{sub} drops and breaks {n} {un}",
        ],
        mul: &[],
        div: &[],
        share: &[(
            "{sub} packs the {u} equally into {n} cartons",
            "How many {u} are in each carton?",
        )],
        question: &[
            "How many {u} does Farmer {name} have now?",
            "How many {u} does {sub} have in the end?",
        ],
        marks: None,
    },
    Acc {
        key: "savings",
        units: &[("dollar", "dollars")],
        person: true,
        start: &[
            "{name} has {n} {un} in {pos} piggy bank.",
            "{name} has saved {n} {un}.",
        ],
        groups: &["{name} saves {n} {un} a week for {s} weeks."],
        add: &[
            "{sub} earns {n} {un} doing chores",
            "{sub} gets {n} {un} for {pos} birthday",
        ],
        sub: &[
            "{sub} spends {n} {un} on a book",
            "{sub} buys a toy for {n} {un}",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: &[
            "How many {u} does {name} have now?",
            "How much money, in dollars, does {name} have now?",
        ],
        marks: None,
    },
    Acc {
        key: "garden",
        units: &[
            ("flower", "flowers"),
            ("tulip", "tulips"),
            ("tomato plant", "tomato plants"),
        ],
        person: true,
        start: &[
            "{name} plants {n} {un} in {pos} garden.",
            "There are {n} {un} in {name}'s garden.",
        ],
        groups: &["{name} plants {s} rows of {u} with {n} {un} in each row."],
        add: &[
            "{sub} plants {n} more",
            "{sub} buys and plants {n} more {un}",
        ],
        sub: &[
            "{sub} digs up {n} {un} for a neighbour",
            "a rabbit eats {n} of the {u}",
        ],
        mul: &["{sub} plants more until there are {times} as many {u}"],
        div: &[],
        share: &[],
        question: &[
            "How many {u} are in {name}'s garden now?",
            "How many {u} does {name} have in {pos} garden now?",
        ],
        marks: None,
    },
    Acc {
        key: "photos",
        units: &[("photo", "photos")],
        person: true,
        start: &["{name} has {n} {un} on {pos} phone."],
        groups: &["{name} has {s} albums with {n} {un} in each album."],
        add: &[
            "{sub} takes {n} more {un}",
            "{sub} receives {n} {un} from a friend",
        ],
        sub: &[
            "{sub} deletes {n} blurry {un}",
            "{sub} deletes {n} {un} to free up space",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: HAVE_NOW,
        marks: None,
    },
    Acc {
        key: "candy",
        units: &[("candy", "candies"), ("lollipop", "lollipops")],
        person: true,
        start: &["{name} gets {n} {un} at a party."],
        groups: &["{name} has {s} party bags with {n} {un} in each bag."],
        add: &[
            "{sub} gets {n} more from {pos} aunt",
            "{sub} wins {n} {un} in a game",
        ],
        sub: &[
            "{sub} eats {n} {un}",
            "{sub} gives {n} {un} to {pos} friends",
        ],
        mul: &[],
        div: &[],
        share: &[],
        question: HAVE_NOW,
        marks: None,
    },
];

const COUNT_REL: [List; 4] = [
    &["{n} more {un} than"],
    &["{n} fewer {un} than"],
    &["{times} as many {u} as"],
    &["{frac} as many {u} as"],
];
const MONEY_REL: [List; 4] = [
    &["{n} {un} more than"],
    &["{n} {un} less than"],
    &["{times} as much as"],
    &["{frac} as much as"],
];

const CMPS: &[Cmp] = &[
    Cmp {
        key: "reading",
        units: &[("page", "pages")],
        person: true,
        seqs: &[DAYS],
        sample: false,
        verbs: &[("reads", "read")],
        base: &[
            "On {e}, {name} reads {n} {un} of a book.",
            "{name} reads {n} {un} on {e}.",
        ],
        step: &[
            "On {e}, {sub} reads {rel} on {prev}.",
            "On {e}, {sub} reads {rel} the day before.",
        ],
        rel: COUNT_REL,
        question: &["How many {u} does {name} read on {e}?"],
    },
    Cmp {
        key: "distance",
        units: &[("km", "km"), ("kilometre", "kilometres"), ("mile", "miles")],
        person: true,
        seqs: &[DAYS],
        sample: false,
        verbs: &[
            ("runs", "run"),
            ("cycles", "cycle"),
            ("walks", "walk"),
            ("swims", "swim"),
        ],
        base: &[
            "On {e}, {name} {v} {n} {un}.",
            "{name} {v} {n} {un} on {e}.",
        ],
        step: &[
            "On {e}, {sub} {v} {rel} on {prev}.",
            "On {e}, {sub} {v} {rel} the day before.",
        ],
        rel: [
            &["{n} {un} more than", "{n} {un} farther than"],
            &["{n} {un} less than"],
            &["{times} as far as"],
            &["{frac} as far as"],
        ],
        question: &[
            "How many {u} does {name} {v0} on {e}?",
            "How far, in {u}, does {name} {v0} on {e}?",
        ],
    },
    Cmp {
        key: "prices",
        units: &[("dollar", "dollars")],
        person: false,
        seqs: &[
            &[
                "pencil",
                "notebook",
                "backpack",
                "lunch box",
                "water bottle",
                "jacket",
                "umbrella",
                "pair of shoes",
            ],
            &[
                "apple",
                "sandwich",
                "pizza",
                "cake",
                "salad",
                "juice",
                "ice cream",
            ],
        ],
        sample: true,
        verbs: &[],
        base: &["{E} costs {n} {un}.", "At a shop, {E} costs {n} {un}."],
        step: &["{E} costs {rel} the {prev}."],
        rel: MONEY_REL,
        question: &[
            "How many {u} does the {e} cost?",
            "What is the price of the {e}, in {u}?",
        ],
    },
    Cmp {
        key: "friends",
        units: &[
            ("sticker", "stickers"),
            ("seashell", "seashells"),
            ("comic book", "comic books"),
            ("toy car", "toy cars"),
            ("marble", "marbles"),
        ],
        person: false,
        seqs: &[],
        sample: true,
        verbs: &[],
        base: &["{e} has {n} {un}."],
        step: &["{e} has {rel} {prev}.", "{e} has {rel} {prev} does."],
        rel: COUNT_REL,
        question: &["How many {u} does {e} have?"],
    },
    Cmp {
        key: "game-points",
        units: &[("point", "points")],
        person: true,
        seqs: &[&[
            "the first round",
            "the second round",
            "the third round",
            "the fourth round",
            "the fifth round",
            "the sixth round",
            "the seventh round",
        ]],
        sample: false,
        verbs: &[],
        base: &["In {e}, {name} scores {n} {un}."],
        step: &["In {e}, {sub} scores {rel} in {prev}."],
        rel: COUNT_REL,
        question: &["How many {u} does {name} score in {e}?"],
    },
    Cmp {
        key: "weekly-savings",
        units: &[("dollar", "dollars")],
        person: true,
        seqs: &[&[
            "the first week",
            "the second week",
            "the third week",
            "the fourth week",
            "the fifth week",
            "the sixth week",
            "the seventh week",
        ]],
        sample: false,
        verbs: &[],
        base: &["In {e}, {name} saves {n} {un}."],
        step: &["In {e}, {sub} saves {rel} in {prev}."],
        rel: MONEY_REL,
        question: &["How many {u} does {name} save in {e}?"],
    },
    Cmp {
        key: "bakery-sales",
        units: &[("loaf of bread", "loaves of bread"), ("cake", "cakes")],
        person: false,
        seqs: &[DAYS],
        sample: false,
        verbs: &[],
        base: &["On {e}, a bakery sells {n} {un}."],
        step: &["On {e}, it sells {rel} on {prev}."],
        rel: COUNT_REL,
        question: &["How many {u} does the bakery sell on {e}?"],
    },
];

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

fn pick<T: Copy>(rng: &mut ChaCha8Rng, xs: &[T]) -> T {
    *xs.choose(rng).expect("non-empty template list")
}

fn person_vars(rng: &mut ChaCha8Rng, v: &mut Vars) {
    let (name, female) = pick(rng, NAMES);
    v.set("name", name);
    v.set("sub", if female { "she" } else { "he" });
    v.set("pos", if female { "her" } else { "his" });
    v.set("obj", if female { "her" } else { "him" });
}

fn unit_vars(rng: &mut ChaCha8Rng, units: &[(&str, &str)], v: &mut Vars) {
    let (one, many) = pick(rng, units);
    v.set("u1", one);
    v.set("u", many);
}

/// Phrasings of one step of an [`Acc`] story: scenario-specific plus the generic ones.
fn acc_phrases(a: &Acc, op: Op, b: u64) -> Vec<&'static str> {
    let mut ps: Vec<&'static str> = vec![];
    match op {
        Op::Add => ps.extend(a.add),
        Op::Sub => ps.extend(a.sub),
        Op::Mul => {
            ps.extend(a.mul);
            ps.extend(ANY_MUL);
            if a.person {
                ps.extend(PERSON_MUL);
            }
            match b {
                2 => ps.extend(ANY_DOUBLE),
                3 => ps.extend(ANY_TRIPLE),
                _ => {}
            }
        }
        Op::Div => {
            ps.extend(a.div);
            ps.extend(ANY_DIV);
            if a.person {
                ps.extend(PERSON_DIV);
                if b == 2 {
                    ps.extend(PERSON_HALF);
                }
            }
        }
    }
    ps
}

fn tell_acc(rng: &mut ChaCha8Rng, a: &Acc, ch: &Chain) -> String {
    let mut v = Vars(vec![]);
    if a.person {
        person_vars(rng, &mut v);
    }
    unit_vars(rng, a.units, &mut v);
    let mut steps: &[(Op, u64)] = &ch.steps;

    // The start, or "s groups of b" when the first step is a multiplication.
    let first = steps[0];
    let start =
        if first.0 == Op::Mul && ch.start >= 2 && !a.groups.is_empty() && rng.random_bool(0.5) {
            v.set("s", ch.start.to_string());
            v.number(first.1);
            steps = &steps[1..];
            v.fill(pick(rng, a.groups))
        } else {
            v.number(ch.start);
            v.fill(pick(rng, a.start))
        };

    // A last division may be told as a fair share, which changes the question.
    let shares: Vec<(&str, &str)> = a
        .share
        .iter()
        .chain(if a.person { PERSON_SHARE } else { &[] })
        .copied()
        .collect();
    let share = match steps.last() {
        Some(&(Op::Div, _)) if !shares.is_empty() && rng.random_bool(0.5) => {
            Some(pick(rng, &shares))
        }
        _ => None,
    };

    let mut clauses = vec![];
    for (i, &(op, b)) in steps.iter().enumerate() {
        v.number(b);
        let t = match share {
            Some((c, _)) if i + 1 == steps.len() => c,
            _ => pick(rng, &acc_phrases(a, op, b)),
        };
        clauses.push(v.fill(t));
    }
    let question = v.fill(match share {
        Some((_, q)) => q,
        None => pick(rng, a.question),
    });

    let mut text = start;
    let body = join_clauses(rng, a, &clauses);
    if !body.is_empty() {
        text.push(' ');
        text.push_str(&body);
    }
    text.push(' ');
    text.push_str(&capitalize(&question));
    text
}

/// The clauses as sentences with connectors, with time markers, or as one comma chain.
fn join_clauses(rng: &mut ChaCha8Rng, a: &Acc, cl: &[String]) -> String {
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
        _ => match a.marks {
            Some(ms) if m <= ms.len() => Some(ms[..m].iter().map(|s| s.to_string()).collect()),
            Some(_) => None,
            None => match rng.random_range(0..4) {
                0 => {
                    let d = rng.random_range(0..DAYS.len());
                    Some(
                        (0..m)
                            .map(|i| format!("On {},", DAYS[(d + i) % DAYS.len()]))
                            .collect(),
                    )
                }
                1 => {
                    let d = rng.random_range(0..MONTHS.len());
                    Some(
                        (0..m)
                            .map(|i| format!("In {},", MONTHS[(d + i) % MONTHS.len()]))
                            .collect(),
                    )
                }
                2 if m <= PARTS_OF_DAY.len() => {
                    Some(PARTS_OF_DAY[..m].iter().map(|s| s.to_string()).collect())
                }
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
            (None, _) => format!("{} {c}.", pick(rng, CONNECTORS)),
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

fn tell_cmp(rng: &mut ChaCha8Rng, c: &Cmp, ch: &Chain) -> String {
    let mut v = Vars(vec![]);
    if c.person {
        person_vars(rng, &mut v);
    }
    unit_vars(rng, c.units, &mut v);
    if !c.verbs.is_empty() {
        let (v3, v0) = pick(rng, c.verbs);
        v.set("v", v3);
        v.set("v0", v0);
    }
    let k = ch.steps.len();
    let ents: Vec<&str> = if c.seqs.is_empty() {
        // Distinct people.
        let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
        names.choose_multiple(rng, k + 1).copied().collect()
    } else {
        let seq = pick(rng, c.seqs);
        if c.sample {
            seq.choose_multiple(rng, k + 1).copied().collect()
        } else if std::ptr::eq(seq, DAYS) {
            let d = rng.random_range(0..DAYS.len());
            (0..=k).map(|i| DAYS[(d + i) % DAYS.len()]).collect()
        } else {
            seq[..=k].to_vec()
        }
    };
    let set_ent = |v: &mut Vars, i: usize| {
        v.set("e", ents[i]);
        v.set("E", indefinite(ents[i]));
    };
    set_ent(&mut v, 0);
    v.number(ch.start);
    let mut parts = vec![capitalize(&v.fill(pick(rng, c.base)))];
    for (i, &(op, b)) in ch.steps.iter().enumerate() {
        v.number(b);
        let rel = v.fill(pick(rng, c.rel[op as usize]));
        v.set("rel", rel);
        v.set("prev", ents[i]);
        set_ent(&mut v, i + 1);
        parts.push(capitalize(&v.fill(pick(rng, c.step))));
    }
    parts.push(capitalize(&v.fill(pick(rng, c.question))));
    parts.join(" ")
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
        ] {
            v.set(k, x);
        }
        v.number(4);
        let mut all: Vec<&str> = vec![];
        for a in ACCS {
            for l in [a.start, a.groups, a.add, a.sub, a.mul, a.div, a.question] {
                all.extend(l);
            }
            all.extend(a.share.iter().flat_map(|(c, q)| [*c, *q]));
        }
        for c in CMPS {
            for l in [c.base, c.step, c.question] {
                all.extend(l);
            }
            c.rel.iter().for_each(|l| all.extend(*l));
        }
        for l in [
            PERSON_MUL,
            ANY_MUL,
            ANY_DOUBLE,
            ANY_TRIPLE,
            PERSON_DIV,
            ANY_DIV,
            PERSON_HALF,
            HAVE_NOW,
        ] {
            all.extend(l);
        }
        all.extend(PERSON_SHARE.iter().flat_map(|(c, q)| [*c, *q]));
        for t in all {
            assert!(!v.fill(t).contains(['{', '}']), "{t}");
        }
        // Non-person scenarios must not use the person's pronouns.
        for a in ACCS.iter().filter(|a| !a.person) {
            for t in [a.start, a.add, a.sub, a.question].concat() {
                assert!(!t.contains("{sub}") && !t.contains("{name}"), "{t}");
            }
        }
        assert!(scenario_names().len() >= 20);
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
}
