//! Prompt templates. The default asks for the final answer in \boxed{}, the convention of the
//! math-evaluation harnesses the paper's benchmarks come from.

pub const BOXED: &str =
    "{problem}\nPlease reason step by step, and put your final answer within \\boxed{}.";

/// Render `template` ("boxed", "plain", or a custom string containing {problem}).
pub fn render(template: &str, problem: &str) -> anyhow::Result<String> {
    Ok(match template {
        "boxed" => BOXED.replace("{problem}", problem),
        "plain" => problem.to_string(),
        t if t.contains("{problem}") => t.replace("{problem}", problem),
        t => {
            anyhow::bail!("--template \"{t}\": use boxed, plain, or a text containing {{problem}}")
        }
    })
}
