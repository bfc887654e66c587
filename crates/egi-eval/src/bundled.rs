//! The data sets that ship inside egi: the five evaluation benchmarks and GSM8K's training
//! split, compiled into the binary so that `--bench gsm8k` works from any folder and survives
//! `cargo install`. The files sit under `crates/egi-eval/data/` byte-identical to their upstream
//! source (the sha256 below is upstream's too; GSM8K train is stored gzipped and unpacked on
//! use); `data/README.md` gives their provenance.

use std::borrow::Cow;
use std::io::Read;

/// One bundled data set.
#[derive(Debug)]
pub struct Bundled {
    /// The name users pass (`--bench NAME`, `--data NAME`).
    pub name: &'static str,
    /// Its file under the data folder, and under a user's `--data-dir`.
    pub file: &'static str,
    /// What it is, in a few words.
    pub what: &'static str,
    /// Number of records.
    pub problems: usize,
    /// Upstream repository, path and commit.
    pub source: &'static str,
    /// License, short form; the full text is `license_text`.
    pub license: &'static str,
    pub license_text: &'static str,
    /// sha256 of the text, checked by the tests.
    pub sha256: &'static str,
    content: Content,
}

/// A set's bytes as compiled in: the text itself, or gzipped where the file is large (GSM8K
/// train, 4.2 MB as text) so that the repository holds no multi-megabyte file.
#[derive(Debug)]
enum Content {
    Text(&'static str),
    Gzip(&'static [u8]),
}

impl Bundled {
    /// The whole text, byte-identical to the upstream file.
    pub fn text(&self) -> Cow<'static, str> {
        match self.content {
            Content::Text(t) => Cow::Borrowed(t),
            Content::Gzip(z) => {
                let mut s = String::new();
                flate2::read::GzDecoder::new(z)
                    .read_to_string(&mut s)
                    .expect("bundled gzip data is checked by the tests");
                Cow::Owned(s)
            }
        }
    }
}

macro_rules! data {
    ($rel:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/", $rel))
    };
}
macro_rules! data_gz {
    ($rel:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/", $rel))
    };
}

const QWEN_MATH_LICENSE: &str = data!("aime24/LICENSE.qwen25math_evaluation");

/// Every bundled set, benchmarks first (the order of `egi data list`).
pub const BUNDLED: [Bundled; 6] = [
    Bundled {
        name: "gsm8k",
        file: "gsm8k/test.jsonl",
        what: "GSM8K test: grade-school word problems, integer answers",
        problems: 1319,
        source: "openai/grade-school-math grade_school_math/data/test.jsonl @3101c7d5072418e28b9008a6636bde82a006892c",
        license: "MIT (OpenAI)",
        license_text: data!("gsm8k/LICENSE"),
        sha256: "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
        content: Content::Text(data!("gsm8k/test.jsonl")),
    },
    Bundled {
        name: "math500",
        file: "math500/test.jsonl",
        what: "MATH-500: the PRM800K test subset of MATH, all subjects and levels",
        problems: 500,
        source: "hkust-nlp/simpleRL-reason examples/simplelr_math_eval/data/math500/test.jsonl @cf1c7858bfc145a27aa733e75d930d34f0d318a6 (byte-identical to openai/prm800k math_splits/test.jsonl)",
        license: "MIT",
        license_text: data!("math500/LICENSE.simplelr_math_eval"),
        sha256: "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
        content: Content::Text(data!("math500/test.jsonl")),
    },
    Bundled {
        name: "aime24",
        file: "aime24/test.jsonl",
        what: "AIME 2024 I and II, integer answers 0-999",
        problems: 30,
        source: "QwenLM/Qwen2.5-Math evaluation/data/aime24/test.jsonl @a45202bd16f1ec06f433442dc1152d0074773465",
        license: "MIT (harness); problems (c) MAA",
        license_text: QWEN_MATH_LICENSE,
        sha256: "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac",
        content: Content::Text(data!("aime24/test.jsonl")),
    },
    Bundled {
        name: "aime25",
        file: "aime25/test.jsonl",
        what: "AIME 2025 I and II, integer answers 0-999",
        problems: 30,
        source: "zhshgmail/AReaL evaluation/data/aime25/test.jsonl @04ab6018c4ef43919348efdc52ba6b679a14ce88",
        license: "Apache-2.0 (harness); problems (c) MAA",
        license_text: data!("aime25/LICENSE.AReaL"),
        sha256: "b4e273c02d3e7fe1b74b59eae768fc8230bfb0f79539890cb56f4361caac0331",
        content: Content::Text(data!("aime25/test.jsonl")),
    },
    Bundled {
        name: "amc23",
        file: "amc23/test.jsonl",
        what: "AMC 2023 problems with numeric answers",
        problems: 40,
        source: "QwenLM/Qwen2.5-Math evaluation/data/amc23/test.jsonl @a45202bd16f1ec06f433442dc1152d0074773465",
        license: "MIT (harness); problems (c) MAA",
        license_text: QWEN_MATH_LICENSE,
        sha256: "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4",
        content: Content::Text(data!("amc23/test.jsonl")),
    },
    Bundled {
        name: "gsm8k-train",
        file: "gsm8k/train.jsonl",
        what: "GSM8K train: worked solutions ending in \"#### N\" (egi sft, egi study)",
        problems: 7473,
        source: "openai/grade-school-math grade_school_math/data/train.jsonl @3101c7d5072418e28b9008a6636bde82a006892c",
        license: "MIT (OpenAI)",
        license_text: data!("gsm8k/LICENSE"),
        sha256: "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
        content: Content::Gzip(data_gz!("gsm8k/train.jsonl.gz")),
    },
];

/// The benchmark names (`--bench`), without the training set.
pub const BENCH_NAMES: [&str; 5] = ["gsm8k", "math500", "aime24", "aime25", "amc23"];

/// The bundled set called `name`.
pub fn find(name: &str) -> Option<&'static Bundled> {
    BUNDLED.iter().find(|b| b.name == name)
}

/// All names, comma-separated, for messages.
pub fn names() -> String {
    BUNDLED
        .iter()
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// The table says what the bytes are: hash, record count, and every record parses.
    #[test]
    fn bundled_sets_match_their_provenance() {
        for b in &BUNDLED {
            let text = b.text();
            let h = Sha256::digest(text.as_bytes());
            let hex: String = h.iter().map(|x| format!("{x:02x}")).collect();
            assert_eq!(hex, b.sha256, "{}: sha256", b.name);
            let n = text.lines().filter(|l| !l.trim().is_empty()).count();
            assert_eq!(n, b.problems, "{}: record count", b.name);
            assert!(
                b.license_text.contains("Permission") || b.license_text.contains("Apache License"),
                "{}: license text",
                b.name
            );
        }
        for n in BENCH_NAMES {
            assert!(find(n).is_some(), "{n}");
        }
        assert!(find("gsm8k-train").is_some() && find("nope").is_none());
    }
}
