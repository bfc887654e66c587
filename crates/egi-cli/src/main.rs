//! The `egi` binary: the command in `egi::main` (lib.rs), with this process's arguments.

fn main() {
    egi::main(std::env::args_os().collect())
}
