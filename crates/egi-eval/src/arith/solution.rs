//! Worked solutions of the arithmetic problems (`egi data arith --solutions`): one line per
//! step, each ending in the step's exact value, then a closing line with the boxed answer. The
//! phrasings are the `[solution]` tables of `data/arith-words.toml`. A solution draws one
//! numbering, one set of operator symbols and one family of lines (the bare equation, worded
//! by the operation, worded by who holds the quantity) and keeps them for all its lines, so a
//! model trained on many solutions sees many layouts of the same reasoning.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::words::words;
use super::{capitalize, pick, pick_line, Chain, Op, Story};

/// The worked solution of `ch` as `story` tells it.
pub(super) fn solve(rng: &mut ChaCha8Rng, ch: &Chain, story: &mut Story) -> String {
    let s = &words().solution;
    let numbering = pick_line(rng, &s.numbering);
    let symbols = pick(rng, &s.symbols);
    let family = rng.random_range(0..3);
    let v = &mut story.vars;
    let mut lines = Vec::with_capacity(ch.steps.len() + 1);
    let mut c = ch.start;
    for (i, &(op, b)) in ch.steps.iter().enumerate() {
        let a = c;
        c = op.apply(a, b);
        v.number(b);
        v.set("i", (i + 1).to_string());
        v.set("b", b.to_string());
        v.set("c", c.to_string());
        let sym = &symbols[Op::ALL.iter().position(|&o| o == op).expect("an op")];
        v.set("x", format!("{a} {sym} {b}"));
        let last = i + 1 == ch.steps.len();
        let t = match (family, &story.ents) {
            (0, _) => pick_line(rng, &s.bare),
            (1, _) => pick_line(rng, s.op.of(op)),
            (_, Some(ents)) => {
                v.set("e", ents[i + 1]);
                v.set("prev", ents[i]);
                pick_line(rng, &s.holder.cmp)
            }
            (_, None) if last && story.share => pick_line(rng, &s.holder.share),
            (_, None) if story.person => pick_line(rng, &s.holder.person),
            (_, None) => pick_line(rng, &s.holder.thing),
        };
        lines.push(format!("{}{}", v.fill(numbering), capitalize(&v.fill(t))));
    }
    debug_assert_eq!(c, ch.value());
    v.set("boxed", format!("\\boxed{{{c}}}"));
    lines.push(v.fill(pick_line(rng, &s.last)));
    lines.join("\n")
}
