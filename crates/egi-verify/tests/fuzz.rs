//! Property test with seeded random inputs: no panic, bounded time, and a few invariants.

use egi_verify::{extract_answer, gold_from_record, verify, verify_any, Options, Status};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

const PIECES: &[&str] = &[
    "\\frac",
    "\\dfrac",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\\{",
    "\\}",
    "\\boxed{",
    "\\fbox{",
    "1",
    "2",
    "0",
    "9",
    "3.5",
    ".",
    ",",
    ",\\!",
    "x",
    "y",
    "i",
    "e",
    "=",
    "\\pm",
    "\\sqrt",
    "\\sqrt[3]",
    "^",
    "_",
    "\\left(",
    "\\right)",
    "\\left[",
    "\\right]",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "&",
    "\\\\",
    "\\text{",
    "cm",
    "$",
    "\\$",
    "%",
    "\\%",
    "####",
    "The answer is ",
    "final answer: ",
    "\\infty",
    "\\cup",
    "-",
    "+",
    "*",
    "/",
    "!",
    "|",
    "\\pi",
    "π",
    "é",
    "\u{0}",
    " ",
    "\n",
    "\\cdot",
    "^\\circ",
    "\\in",
    "\\le",
    "five",
    "</think>",
    "\\",
    "\\mathrm{",
    "\\begin{array}{cc}",
    "\\end{array}",
    "00",
    "1,000",
    "\\binom",
    "sin",
    "\\ln",
    "(B)",
    "abc",
    "\u{200b}",
    "🙂",
    "\\dots",
    "<",
    "0/0",
    "1e308",
    "99999999999999999999",
];

fn random_text(rng: &mut ChaCha8Rng, max_pieces: usize) -> String {
    let n = rng.random_range(0..=max_pieces);
    let mut s = String::new();
    for _ in 0..n {
        if rng.random_bool(0.1) {
            // a random unicode scalar
            let c = char::from_u32(rng.random_range(0..0x11000)).unwrap_or('?');
            s.push(c);
        } else {
            s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
        }
    }
    s
}

#[test]
fn random_inputs_never_panic_and_are_fast() {
    let mut rng = ChaCha8Rng::seed_from_u64(20261126);
    let opts = Options::default();
    let strict = Options {
        require_think_close: true,
        rel_tol: 0.0,
    };
    let mut worst = Duration::ZERO;
    let mut counts = [0usize; 4];
    let n = 30_000;
    for k in 0..n {
        let a = random_text(&mut rng, if k % 10 == 0 { 400 } else { 30 });
        let g = random_text(&mut rng, 12);
        let t = Instant::now();
        let v = verify(&a, &g, if k % 7 == 0 { &strict } else { &opts });
        let _ = extract_answer(&a, &opts);
        let _ = verify_any(&a, &[g.clone(), a.clone()], &opts);
        let el = t.elapsed();
        worst = worst.max(el);
        assert!(
            el < Duration::from_millis(50),
            "slow case: {a:?} vs {g:?}: {el:?}"
        );
        counts[v.status as usize] += 1;
        let _ = serde_json::to_string(&v).unwrap();
        // reflexivity: a parsed answer boxed against itself is never Wrong (text
        // that ends a response, `</think>` or a chat marker, is not an answer)
        let structural = ["</think>", "<|", "</s>", "[INST]"]
            .iter()
            .any(|m| g.contains(m));
        if !g.contains(['{', '}', '\\', '#'])
            && !structural
            && !g.to_ascii_lowercase().contains("answer")
        {
            let r = verify(&format!("\\boxed{{{g}}}"), &g, &opts);
            assert_ne!(
                r.status,
                Status::Wrong,
                "reflexivity failed for {g:?}: {r:?}"
            );
        }
    }
    println!("{n} random cases, worst {worst:?}, status counts [C, W, UA, UG] = {counts:?}");
}

#[test]
fn random_structured_math_is_symmetric() {
    // random well-formed answers; Correct must not depend on which side is the gold
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let atoms = [
        "1",
        "2",
        "3",
        "\\frac{1}{2}",
        "\\sqrt{2}",
        "x",
        "\\pi",
        "0.5",
        "2x",
        "x^2",
    ];
    let ops = ["+", "-", "\\cdot ", "/"];
    let opts = Options::default();
    let mut correct = 0;
    for _ in 0..5000 {
        let gen = |rng: &mut ChaCha8Rng| {
            let n = rng.random_range(1..4);
            let mut s = atoms[rng.random_range(0..atoms.len())].to_string();
            for _ in 1..n {
                s.push_str(ops[rng.random_range(0..ops.len())]);
                s.push_str(atoms[rng.random_range(0..atoms.len())]);
            }
            s
        };
        let (a, b) = (gen(&mut rng), gen(&mut rng));
        let ab = verify(&format!("\\boxed{{{a}}}"), &b, &opts).status;
        let ba = verify(&format!("\\boxed{{{b}}}"), &a, &opts).status;
        assert_eq!(ab, ba, "{a:?} vs {b:?}");
        assert!(
            matches!(ab, Status::Correct | Status::Wrong),
            "{a:?} vs {b:?}: {ab:?}"
        );
        correct += (ab == Status::Correct) as usize;
    }
    println!("symmetric structured cases: {correct} of 5000 correct");
}

#[test]
fn random_json_records() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for _ in 0..2000 {
        let t = random_text(&mut rng, 20);
        let rec = match rng.random_range(0..5) {
            0 => serde_json::json!({"answer": t}),
            1 => serde_json::json!({"solution": t}),
            2 => serde_json::json!({"answer": rng.random::<f64>() * 1e6}),
            3 => serde_json::json!({"answer": rng.random::<i64>()}),
            _ => serde_json::json!([t]),
        };
        let _ = gold_from_record(&rec);
    }
}
