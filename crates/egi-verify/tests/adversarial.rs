//! Hostile inputs must return quickly (< 50 ms each, release build) and never panic.

use egi_verify::{extract_answer, verify, Options, Status};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_millis(50);

fn timed(name: &str, response: &str, gold: &str) -> Status {
    let opts = Options::default();
    let t = Instant::now();
    let v = verify(response, gold, &opts);
    let el = t.elapsed();
    println!("{name}: {:?} in {:?}", v.status, el);
    assert!(el < LIMIT, "{name} took {el:?}");
    // and the other way round (hostile gold)
    let t = Instant::now();
    let w = verify(gold, response, &opts);
    let el = t.elapsed();
    assert!(el < LIMIT, "{name} (swapped) took {el:?}");
    let _ = w;
    let t = Instant::now();
    let _ = extract_answer(response, &opts);
    assert!(t.elapsed() < LIMIT, "{name} extraction");
    v.status
}

#[test]
fn million_nested_braces() {
    let n = 1_000_000;
    let s = format!("\\boxed{{{}{}}}", "{".repeat(n), "}".repeat(n));
    assert_eq!(
        timed("boxed 10^6 nested braces", &s, "3"),
        Status::UnparsableAnswer
    );
    let open_only = format!("\\boxed{{{}", "{".repeat(n));
    timed("10^6 unclosed braces", &open_only, "3");
    let bare = format!("{}1{}", "{".repeat(n), "}".repeat(n));
    timed("bare 10^6 nested braces", &bare, "1");
    let closers = "}".repeat(n);
    timed("10^6 closing braces", &closers, "1");
}

#[test]
fn one_megabyte_answers() {
    let mb = 1 << 20;
    let digits = "1234567890".repeat(mb / 10);
    timed("1 MB digits", &digits, "7");
    let boxed = format!("\\boxed{{{}}}", "1+".repeat(mb / 2) + "1");
    assert_eq!(
        timed("1 MB boxed sum", &boxed, "3"),
        Status::UnparsableAnswer
    );
    let words = "the answer is ".repeat(mb / 14);
    timed("1 MB answer phrases", &words, "3");
    let many_boxes = "\\boxed{".repeat(mb / 7);
    timed("1 MB of \\boxed{", &many_boxes, "3");
    let hashes = "#### ".repeat(mb / 5);
    timed("1 MB of ####", &hashes, "3");
    let text = "a".repeat(mb);
    timed("1 MB letters", &text, "3");
    let spaces = format!("\\boxed{{1{}^2}}", " ".repeat(9000));
    timed("spaces before ^", &spaces, "1");
    let latex = "\\frac{1}{2}".repeat(mb / 11);
    timed("1 MB latex", &latex, "\\frac12");
    let commas = "1,".repeat(mb / 2);
    timed("1 MB list", &commas, "1");
    let tuple = format!("\\boxed{{({})}}", "1,".repeat(4000) + "1");
    timed("8 KB tuple", &tuple, &tuple);
    let set = format!(
        "\\boxed{{{}}}",
        (0..60)
            .map(|i| format!("x^{i}+{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let set_rev = format!(
        "\\boxed{{{}}}",
        (0..60)
            .rev()
            .map(|i| format!("{i}+x^{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(
        timed("60-element expression set", &set, &set_rev),
        Status::Correct
    );
}

#[test]
fn deep_parentheses_and_nesting() {
    for n in [10, 60, 100, 1000, 4000, 100_000] {
        let s = format!("\\boxed{{{}1{}}}", "(".repeat(n), ")".repeat(n));
        let st = timed(&format!("{n} nested parens"), &s, "1");
        if n <= 8 {
            assert_eq!(st, Status::Correct);
        }
        let s = format!("\\boxed{{{}x{}}}", "\\frac{1}{".repeat(n), "}".repeat(n));
        timed(&format!("{n} nested fracs"), &s, "x");
        let s = format!("\\boxed{{{}2{}}}", "\\sqrt{".repeat(n), "}".repeat(n));
        timed(&format!("{n} nested sqrts"), &s, "2");
        let s = format!("\\boxed{{{}1}}", "2^".repeat(n));
        timed(&format!("{n} power tower"), &s, "2");
        let s = format!("\\boxed{{{}1}}", "-".repeat(n));
        timed(&format!("{n} minus signs"), &s, "1");
        let s = format!("\\boxed{{{}1{}}}", "\\{".repeat(n), "\\}".repeat(n));
        timed(&format!("{n} nested sets"), &s, "1");
        let s = format!("\\boxed{{{}}}", "1\\pm ".repeat(n.min(5000)) + "1");
        timed(&format!("{n} plus-minus"), &s, "1");
        let s = format!("\\boxed{{{}}}", "\\begin{pmatrix}".repeat(n.min(600)));
        timed(&format!("{n} unclosed matrices"), &s, "1");
        let s = format!("\\boxed{{{}1}}", "|".repeat(n));
        timed(&format!("{n} bars"), &s, "1");
    }
    // moderately nested input still works
    assert_eq!(
        verify("\\boxed{((((1))))}", "1", &Options::default()).status,
        Status::Correct
    );
    assert_eq!(
        verify(
            "\\boxed{\\frac{1}{\\frac{1}{\\frac{1}{2}}}}",
            "\\frac12",
            &Options::default()
        )
        .status,
        Status::Correct
    );
}

#[test]
fn long_answers_are_unparsable_not_wrong() {
    let long = format!("\\boxed{{{}}}", "1".repeat(20_000));
    assert_eq!(
        verify(&long, "1", &Options::default()).status,
        Status::UnparsableAnswer
    );
    assert_eq!(
        verify("\\boxed{1}", &long, &Options::default()).status,
        Status::UnparsableGold
    );
}
