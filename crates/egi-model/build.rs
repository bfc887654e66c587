// Empty: egi-model's build-dependencies only pin a proc-macro feature (see Cargo.toml).
fn main() {}
