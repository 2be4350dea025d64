use std::process::ExitCode;

/// The proxy allocates per request (heads, buffers, h2 tasks); see Cargo.toml for why not the libc
/// allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    spawngate::cli::main()
}
