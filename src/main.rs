use std::process::ExitCode;

fn main() -> ExitCode {
    spawngate::cli::main()
}
