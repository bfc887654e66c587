//! A token-level task for tiny random models: answer with the sum of two digits.

use anyhow::Result;
use candle_core::DType;
use egi_model::{config::Arch, testing::tiny_random};
use egi_rl::{Check, Task};

/// Prompt [a+1, b+1, 30]; the answer token is 11 + a + b. Every token decodes to "t<id>\n", so
/// each token is one fingerprint step.
pub struct DigitSum {
    prompts: Vec<Vec<u32>>,
    answers: Vec<u32>,
}

pub const EOS: u32 = 60;

impl DigitSum {
    pub fn new(max_digit: u32) -> Self {
        let (mut prompts, mut answers) = (vec![], vec![]);
        for a in 0..=max_digit {
            for b in 0..=max_digit {
                prompts.push(vec![a + 1, b + 1, 30]);
                answers.push(11 + a + b);
            }
        }
        DigitSum { prompts, answers }
    }
}

impl Task for DigitSum {
    fn len(&self) -> usize {
        self.prompts.len()
    }
    fn id(&self, i: usize) -> String {
        format!("p{i}")
    }
    fn prompt_ids(&self, i: usize) -> &[u32] {
        &self.prompts[i]
    }
    fn eos_ids(&self) -> &[u32] {
        std::slice::from_ref(&EOS)
    }
    fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(ids
            .iter()
            .filter(|&&t| t != EOS)
            .map(|t| format!("t{t}\n"))
            .collect())
    }
    fn check(&self, i: usize, response: &str) -> Check {
        let first = response.lines().next().unwrap_or("");
        Check {
            correct: first == format!("t{}", self.answers[i]),
            formatted: true,
        }
    }
}

/// A tiny random model whose output starts near uniform (embeddings, tied to the output,
/// scaled down): chance is then ~1/61 per sample, and every group can still explore.
pub fn tiny(arch: Arch, seed: u64) -> egi_model::Transformer {
    let mut m = tiny_random(arch, DType::F32, seed).unwrap();
    let name = "model.embed_tokens.weight";
    let w = (m.param(name).unwrap().value.clone() * 0.05).unwrap();
    m.set_value(name, w).unwrap();
    m
}
