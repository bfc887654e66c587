//! The words of the arithmetic stories: `data/arith-words.toml`, compiled into the binary and
//! checked once when first used. The file is data so that a phrasing is added without touching
//! the generator; its schema is the structs below.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::Op;

const SOURCE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/arith-words.toml"
));
const PATH: &str = "crates/egi-eval/data/arith-words.toml";

static WORDS: LazyLock<Words> = LazyLock::new(|| {
    Words::parse(SOURCE).unwrap_or_else(|e| panic!("{PATH}: {e:#} (fix the file and rebuild)"))
});

/// The tables, parsed and checked.
pub(super) fn words() -> &'static Words {
    &WORDS
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Words {
    pub names: Names,
    pub lists: Lists,
    pub generic: Generic,
    pub relations: BTreeMap<String, Rel>,
    #[serde(rename = "acc")]
    pub accs: Vec<Acc>,
    #[serde(rename = "cmp")]
    pub cmps: Vec<Cmp>,
    pub solution: Solution,
}

/// People, drawn as one list: the female names, then the male ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Names {
    female: Vec<String>,
    male: Vec<String>,
}

impl Names {
    /// (name, female), in draw order.
    pub fn people(&self) -> Vec<(&str, bool)> {
        let f = self.female.iter().map(|n| (n.as_str(), true));
        f.chain(self.male.iter().map(|n| (n.as_str(), false)))
            .collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.female.iter().chain(&self.male).map(String::as_str)
    }
}

/// Lists the generator uses itself, and that scenarios may name instead of repeating.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Lists {
    pub days: Vec<String>,
    pub months: Vec<String>,
    pub parts_of_day: Vec<String>,
    pub connectors: Vec<String>,
    pub have_now: Vec<String>,
}

/// Phrasings every changing-quantity scenario may use beside its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Generic {
    pub person_mul: Vec<String>,
    pub any_mul: Vec<String>,
    pub any_double: Vec<String>,
    pub any_triple: Vec<String>,
    pub person_div: Vec<String>,
    pub any_div: Vec<String>,
    pub person_half: Vec<String>,
    pub person_share: Vec<(String, String)>,
}

/// A list given inline or by the name of a `[lists]` entry.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum ListRef {
    Named(String),
    Inline(Vec<String>),
}

/// A comparison's relations, one list per operation, put in `{rel}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rel {
    add: Vec<String>,
    sub: Vec<String>,
    mul: Vec<String>,
    div: Vec<String>,
}

impl Rel {
    pub fn of(&self, op: Op) -> &[String] {
        match op {
            Op::Add => &self.add,
            Op::Sub => &self.sub,
            Op::Mul => &self.mul,
            Op::Div => &self.div,
        }
    }
}

/// The phrasings of worked solutions (`--solutions`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Solution {
    /// Line prefixes; {i} is the step's number.
    pub numbering: Vec<String>,
    /// Operator symbols in the order add, sub, mul, div.
    pub symbols: Vec<[String; 4]>,
    /// Lines that are the equation only.
    pub bare: Vec<String>,
    /// Lines worded by the operation.
    pub op: Rel,
    /// Lines worded by who or what holds the quantity.
    pub holder: Holder,
    /// The closing line; {boxed} is the answer in \boxed{}.
    pub last: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Holder {
    pub person: Vec<String>,
    pub thing: Vec<String>,
    /// The last step of a story that ends in a fair share.
    pub share: Vec<String>,
    /// A comparison's step; {e} is its entity, {prev} the one before.
    pub cmp: Vec<String>,
}

/// Relations inline or by the name of a `[relations]` entry.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RelRef {
    Named(String),
    Inline(Rel),
}

/// A quantity that changes over time. Clauses start lower-case and carry their own subject.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Acc {
    pub key: String,
    /// (singular, plural), one drawn per problem.
    pub units: Vec<(String, String)>,
    /// The holder is a named person ({name}, {sub}, {pos}, {obj}); else a thing (bus, bakery).
    pub person: bool,
    pub start: Vec<String>,
    /// Start sentences for a first multiplication: {s} groups of {n}.
    #[serde(default)]
    pub groups: Vec<String>,
    pub add: Vec<String>,
    pub sub: Vec<String>,
    /// Scenario-specific phrasings; the generic ones are always available too.
    #[serde(default)]
    pub mul: Vec<String>,
    #[serde(default)]
    pub div: Vec<String>,
    /// A last division told as a fair share, with the question it then needs.
    #[serde(default)]
    pub share: Vec<(String, String)>,
    pub question: ListRef,
    /// Own time markers (bus stops); none: the days, months, parts of the day, ordinals.
    #[serde(default)]
    pub marks: Option<Vec<String>>,
}

/// A chain of comparisons: entity i+1 is defined relative to entity i.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Cmp {
    pub key: String,
    pub units: Vec<(String, String)>,
    pub person: bool,
    /// Entities: consecutive runs of one of these (the days wrap around the week), or, when
    /// `sample`, distinct random picks; none: distinct people.
    #[serde(default)]
    pub seqs: Vec<ListRef>,
    #[serde(default)]
    pub sample: bool,
    /// (third person, base form) verbs for {v} / {v0}.
    #[serde(default)]
    pub verbs: Vec<(String, String)>,
    pub base: Vec<String>,
    pub step: Vec<String>,
    pub question: ListRef,
    pub rel: RelRef,
}

impl Words {
    fn parse(src: &str) -> Result<Words> {
        let w: Words = toml::from_str(src)?;
        w.check()?;
        Ok(w)
    }

    pub fn list<'a>(&'a self, r: &'a ListRef) -> &'a [String] {
        match r {
            ListRef::Inline(xs) => xs,
            ListRef::Named(n) => self.named(n).expect("references checked at load"),
        }
    }

    pub fn rel<'a>(&'a self, r: &'a RelRef) -> &'a Rel {
        match r {
            RelRef::Inline(rel) => rel,
            RelRef::Named(n) => &self.relations[n],
        }
    }

    /// Whether a comparison sequence wraps around (the week) instead of starting at its first
    /// entry (rounds, weeks).
    pub fn wraps(&self, r: &ListRef) -> bool {
        matches!(r, ListRef::Named(n) if n == "days")
    }

    fn named(&self, n: &str) -> Option<&[String]> {
        let l = &self.lists;
        Some(match n {
            "days" => &l.days,
            "months" => &l.months,
            "parts_of_day" => &l.parts_of_day,
            "connectors" => &l.connectors,
            "have_now" => &l.have_now,
            _ => return None,
        })
    }

    /// Every reference resolves, every list that is drawn from is non-empty, keys are unique,
    /// and a comparison sequence is long enough for the longest chain.
    fn check(&self) -> Result<()> {
        let list = |what: &str, r: &ListRef| -> Result<()> {
            match r {
                ListRef::Named(n) => {
                    self.named(n).with_context(|| {
                        format!("{what}: no list \"{n}\"; name one of [lists]: days, months, parts_of_day, connectors, have_now")
                    })?;
                }
                ListRef::Inline(xs) if xs.is_empty() => bail!("{what}: empty list"),
                ListRef::Inline(_) => {}
            }
            Ok(())
        };
        let nonempty = |what: &str, xs: &[String]| -> Result<()> {
            if xs.is_empty() {
                bail!("{what}: empty list");
            }
            Ok(())
        };
        if self.names.female.is_empty() || self.names.male.is_empty() {
            bail!("[names]: need female and male names");
        }
        let mut keys = std::collections::HashSet::new();
        for a in &self.accs {
            let at = |f: &str| format!("[[acc]] \"{}\", field {f}", a.key);
            if !keys.insert(a.key.as_str()) {
                bail!("{}: duplicate key", at("key"));
            }
            if a.units.is_empty() {
                bail!("{}: empty list", at("units"));
            }
            nonempty(&at("start"), &a.start)?;
            nonempty(&at("add"), &a.add)?;
            nonempty(&at("sub"), &a.sub)?;
            list(&at("question"), &a.question)?;
            if a.marks.as_ref().is_some_and(|m| m.is_empty()) {
                bail!("{}: empty list", at("marks"));
            }
        }
        for c in &self.cmps {
            let at = |f: &str| format!("[[cmp]] \"{}\", field {f}", c.key);
            if !keys.insert(c.key.as_str()) {
                bail!("{}: duplicate key", at("key"));
            }
            if c.units.is_empty() {
                bail!("{}: empty list", at("units"));
            }
            nonempty(&at("base"), &c.base)?;
            nonempty(&at("step"), &c.step)?;
            list(&at("question"), &c.question)?;
            for s in &c.seqs {
                list(&at("seqs"), s)?;
                if self.list(s).len() <= super::MAX_STEPS {
                    bail!(
                        "{}: a sequence needs at least {} entries, one per step and the start",
                        at("seqs"),
                        super::MAX_STEPS + 1
                    );
                }
            }
            match &c.rel {
                RelRef::Named(n) if !self.relations.contains_key(n) => bail!(
                    "{}: no relations \"{n}\"; name one of [relations] ({})",
                    at("rel"),
                    self.relations
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                r => {
                    let rel = self.rel(r);
                    for op in Op::ALL {
                        nonempty(&format!("{}.{}", at("rel"), op.name()), rel.of(op))?;
                    }
                }
            }
        }
        let s = &self.solution;
        let at = |f: &str| format!("[solution], field {f}");
        for (f, xs) in [
            ("numbering", &s.numbering),
            ("bare", &s.bare),
            ("last", &s.last),
            ("holder.person", &s.holder.person),
            ("holder.thing", &s.holder.thing),
            ("holder.share", &s.holder.share),
            ("holder.cmp", &s.holder.cmp),
        ] {
            nonempty(&at(f), xs)?;
        }
        if s.symbols.is_empty() {
            bail!("{}: empty list", at("symbols"));
        }
        for op in Op::ALL {
            nonempty(&at(&format!("op.{}", op.name())), s.op.of(op))?;
        }
        if let Some(l) = s.last.iter().find(|l| !l.contains("{boxed}")) {
            bail!(
                "{}: \"{l}\" has no {{boxed}}; every closing line states the answer",
                at("last")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_file_parses_and_checks() {
        let w = words();
        assert_eq!(w.names.people().len(), 32);
        assert_eq!(w.accs.len() + w.cmps.len(), 24);
    }

    #[test]
    fn bad_files_name_the_field() {
        let err = |edit: &dyn Fn(String) -> String| {
            format!("{:#}", Words::parse(&edit(SOURCE.to_string())).unwrap_err())
        };
        let e = err(&|s| s.replacen("question = \"have_now\"", "question = \"have_then\"", 1));
        assert!(
            e.contains("[[acc]] \"marbles\", field question") && e.contains("have_then"),
            "{e}"
        );
        let e = err(&|s| s.replacen("rel = \"money\"", "rel = \"cash\"", 1));
        assert!(e.contains("field rel") && e.contains("count, money"), "{e}");
        let e = err(&|s| s.replacen("key = \"fruit\"", "key = \"marbles\"", 1));
        assert!(e.contains("duplicate key"), "{e}");
        let e = err(&|s| s.replacen("person = true", "person = true\nmood = \"sunny\"", 1));
        assert!(e.contains("mood"), "{e}");
        let e = err(&|s| s.replacen("\"Answer: {boxed}\"", "\"Done.\"", 1));
        assert!(
            e.contains("[solution], field last") && e.contains("{boxed}"),
            "{e}"
        );
    }
}
