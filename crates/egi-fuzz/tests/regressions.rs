//! Inputs the fuzzers found, kept as tests (built from the seeds, so no binary files).

use candle_core::{DType, Device};

fn load_err(bytes: &[u8]) -> String {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.gguf");
    std::fs::write(&p, bytes).unwrap();
    match egi_model::load(p.to_str().unwrap(), DType::F32, &Device::Cpu) {
        Ok(_) => panic!("a corrupt GGUF loaded"),
        Err(e) => format!("{e:#}"),
    }
}

/// A tensor's first dimension in the GGUF tensor table (after its name and n_dims).
fn dim_offset(gguf: &[u8], tensor: &str) -> usize {
    let name = tensor.as_bytes();
    let at = gguf
        .windows(name.len() + 8)
        .position(|w| w[8..] == *name && w[..8] == (name.len() as u64).to_le_bytes())
        .expect("tensor name in the table");
    at + 8 + name.len() + 4
}

/// libFuzzer, gguf target: a dimension so large that the element count overflowed, and
/// dequantizing panicked with "capacity overflow" in candle.
#[test]
fn a_huge_tensor_dimension_is_an_error_not_a_panic() {
    for dim in [u64::MAX, 1 << 62, 1 << 40] {
        let mut g = egi_fuzz::seeds::gguf();
        let at = dim_offset(&g, "token_embd.weight");
        g[at..at + 8].copy_from_slice(&dim.to_le_bytes());
        let e = load_err(&g);
        assert!(
            e.contains("token_embd.weight") && e.contains("truncated"),
            "{e}"
        );
    }
}
