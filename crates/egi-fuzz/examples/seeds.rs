//! Write each fuzz target's seed into `DIR/<target>/seed` (libFuzzer's corpus layout).
//!
//! cargo run --release -p egi-fuzz --example seeds -- fuzz/corpus

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or("fuzz/corpus".into()));
    for (name, seed) in [
        ("gguf", egi_fuzz::seeds::gguf()),
        ("safetensors", egi_fuzz::seeds::safetensors()),
        ("tokenizer", egi_fuzz::seeds::tokenizer()),
        ("jsonl", egi_fuzz::seeds::jsonl()),
        ("verify", egi_fuzz::seeds::verify()),
    ] {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("corpus directory");
        std::fs::write(d.join("seed"), seed).expect("seed file");
        println!("{}", d.join("seed").display());
    }
}
