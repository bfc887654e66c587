//! What the trainer learns: prompts as token ids, and a check of each response.
//!
//! [`MathTask`] is the real one (chat template, the math verifier); tests use token-level
//! tasks on tiny models without a tokenizer.

use anyhow::Result;
use egi_eval::data::Problem;
use egi_model::Tokenizer;
use egi_verify::{ExtractMethod, Options};

/// The verdict on one response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Check {
    pub correct: bool,
    /// The answer was given explicitly (\boxed, "####", "the answer is"), not guessed from the
    /// last number.
    pub formatted: bool,
}

pub trait Task: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn id(&self, i: usize) -> String;
    fn prompt_ids(&self, i: usize) -> &[u32];
    fn eos_ids(&self) -> &[u32];
    /// Text of generated ids (special tokens skipped).
    fn decode(&self, ids: &[u32]) -> Result<String>;
    fn check(&self, i: usize, response: &str) -> Check;
    /// Character offset in `decode(ids)` where each token starts (for the fingerprint's steps).
    fn char_starts(&self, ids: &[u32]) -> Result<Vec<usize>> {
        (0..ids.len())
            .map(|i| Ok(self.decode(&ids[..i])?.chars().count()))
            .collect()
    }
}

/// A task whose reward is replaced by the parity of the response's length in characters (the
/// inner check still runs and gives `formatted`): every group of a few responses then has
/// mixed rewards and every step a full update, whatever the model's accuracy. For speed
/// measurements (`egi bench --train`) and tests of the update, never for training.
pub struct LengthParity<T>(pub T);

impl<T: Task> Task for LengthParity<T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn id(&self, i: usize) -> String {
        self.0.id(i)
    }
    fn prompt_ids(&self, i: usize) -> &[u32] {
        self.0.prompt_ids(i)
    }
    fn eos_ids(&self) -> &[u32] {
        self.0.eos_ids()
    }
    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.0.decode(ids)
    }
    fn check(&self, i: usize, response: &str) -> Check {
        Check {
            correct: response.len().is_multiple_of(2),
            formatted: self.0.check(i, response).formatted,
        }
    }
    fn char_starts(&self, ids: &[u32]) -> Result<Vec<usize>> {
        self.0.char_starts(ids)
    }
}

/// Math word problems with verified answers, prompted through the model's chat template.
pub struct MathTask<'a> {
    pub problems: Vec<Problem>,
    prompts: Vec<Vec<u32>>,
    tok: &'a Tokenizer,
    eos: Vec<u32>,
    opts: Options,
}

impl<'a> MathTask<'a> {
    /// `template`: see egi_eval::prompt::render (boxed, plain, or text with {problem}); `raw`
    /// skips the chat template.
    pub fn new(
        problems: Vec<Problem>,
        tok: &'a Tokenizer,
        eos: Vec<u32>,
        template: &str,
        raw: bool,
    ) -> Result<Self> {
        let prompts = problems
            .iter()
            .map(|p| -> Result<Vec<u32>> {
                let text = egi_eval::prompt::render(template, &p.problem)?;
                egi_model::text::encode_prompt(tok, &text, raw)
            })
            .collect::<Result<_>>()?;
        Ok(MathTask {
            problems,
            prompts,
            tok,
            eos,
            opts: Options::default(),
        })
    }
}

impl Task for MathTask<'_> {
    fn len(&self) -> usize {
        self.problems.len()
    }
    fn id(&self, i: usize) -> String {
        self.problems[i].id.clone()
    }
    fn prompt_ids(&self, i: usize) -> &[u32] {
        &self.prompts[i]
    }
    fn eos_ids(&self) -> &[u32] {
        &self.eos
    }
    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tok.decode(ids, true)
    }
    fn check(&self, i: usize, response: &str) -> Check {
        let v = egi_verify::verify(response, &self.problems[i].gold, &self.opts);
        Check {
            correct: v.status == egi_verify::Status::Correct,
            // an explicit answer (box, "####", "The answer is"), not one guessed
            // from the last math or number of the text
            formatted: v.extracted.as_ref().is_some_and(|e| {
                !matches!(
                    e.method,
                    ExtractMethod::LastNumber | ExtractMethod::Whole | ExtractMethod::InlineMath
                )
            }),
        }
    }
}
