//! A fingerprint computed from the trainer's recorded forward over a packed group (prompt +
//! several responses, `Pass::select_rows`) equals the fingerprint of each prompt + response
//! recorded on its own: same token scores, same norms, same correlations. In f64 (candle
//! ops on both sides) to 1e-7 (the square roots of round-off eigenvalues near zero differ at
//! about 1e-8), and in f32 (the fused kernels in the training pass) to 1e-4.

use candle_core::{DType, Device};
use egi_model::pass::Pass;
use egi_model::testing::tiny_random;
use egi_model::{Arch, AttnInput};
use egi_probe::{fingerprint, fingerprint_pass, ProbeOptions, StepMode};

const PROMPT: [u32; 5] = [5, 17, 3, 44, 9];
const RESP: [&[u32]; 3] = [
    &[60, 2, 31, 12, 8, 8, 40],
    &[1, 22, 7],
    &[30, 31, 32, 33, 34, 35],
];

fn text_of(n: usize) -> (String, Vec<usize>) {
    let t: String = "ab|cd|e|fgh".chars().cycle().take(n).collect();
    (t, (0..n).collect())
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn check(arch: Arch, dtype: DType, mode: StepMode, tol: f64) {
    let m = tiny_random(arch, dtype, 13).unwrap();
    let mut ids: Vec<u32> = PROMPT.to_vec();
    for r in RESP {
        ids.extend_from_slice(r);
    }
    let blocks: Vec<usize> = RESP.iter().map(|r| r.len()).collect();
    let attn = AttnInput::packed(PROMPT.len(), &blocks, dtype, &Device::Cpu).unwrap();
    let pass = Pass::record(&m, &ids, &attn).unwrap();
    let opts = ProbeOptions {
        step_mode: mode,
        step_delim: "|".into(),
        batch: 4,
        ..Default::default()
    };
    let n_prompt = PROMPT.len();
    let mut start = n_prompt;
    for (j, r) in RESP.iter().enumerate() {
        let seq: Vec<u32> = PROMPT.iter().chain(r.iter()).copied().collect();
        let rows: Vec<u32> = (0..n_prompt as u32)
            .chain((start..start + r.len()).map(|i| i as u32))
            .collect();
        start += r.len();
        let (text, starts) = text_of(r.len());
        let own = fingerprint(&m, &seq, n_prompt, &starts, &text, &opts).unwrap();
        // The trainer's packed row lacks each response's last token (no target follows it):
        // alternate between a pass with and without that row.
        let rows = if j % 2 == 1 {
            &rows[..rows.len() - 1]
        } else {
            &rows[..]
        };
        let own_rows = pass.select_rows(&m, rows).unwrap();
        let shared =
            fingerprint_pass(&m, &own_rows, &seq, n_prompt, &starts, &text, &opts).unwrap();
        let ctx = format!("{arch:?} {dtype:?} {mode:?} response {j}");
        for (a, b) in own.tokens.iter().zip(&shared.tokens) {
            assert!(close(a.entropy, b.entropy, tol), "{ctx}: entropy");
            assert!(close(a.logit, b.logit, tol), "{ctx}: logit");
            if let (Some(x), Some(y)) = (&a.norms, &b.norms) {
                for (p, q) in x.iter().zip(y) {
                    assert!(close(*p, *q, tol), "{ctx}: token norm {p} vs {q}");
                }
            }
        }
        assert_eq!(own.steps.len(), shared.steps.len(), "{ctx}");
        for (a, b) in own.steps.iter().zip(&shared.steps) {
            assert!(a.influence > 0.0, "{ctx}: a norm of zero proves nothing");
            assert!(
                close(a.influence, b.influence, tol),
                "{ctx}: step influence {} vs {}",
                a.influence,
                b.influence
            );
        }
        match (own.rho_step, shared.rho_step) {
            (Some(a), Some(b)) => assert!(close(a, b, tol), "{ctx}: rho {a} vs {b}"),
            (a, b) => assert_eq!(a.is_some(), b.is_some(), "{ctx}: rho"),
        }
    }
}

#[test]
fn fingerprint_from_the_training_pass_equals_its_own_recording() {
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3] {
        for mode in [StepMode::Mean, StepMode::SumLogits] {
            check(arch, DType::F64, mode, 1e-7);
        }
        check(arch, DType::F32, StepMode::SumLogits, 1e-4);
    }
}
