//! The `bunq-onboard` binary: parse arguments, set up logging and the runtime, run, exit.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use bunq_onboard::{Cli, Command, Exit, LossyStderr, error_chain, run, stderr_line};

fn main() -> ExitCode {
    keep_big_allocations_mapped();
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info,bunq_onboard=info",
        _ => "debug,hyper=info,reqwest=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(|| LossyStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    // The client commands run on one thread. A provision run's CPU is its rows' RSA
    // signatures, which were already made on one thread (provision's stream of rows is one
    // future); worker threads only added a cross-thread wake-up for every hand-over between
    // that stream, the results writer and the HTTP connections (bench/results.md, CPU per row).
    // The simulator answers many clients at once and keeps a worker per core.
    let mut builder = match cli.command {
        Command::Simulate(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            stderr_line(&format!("error: could not start the async runtime: {e}"));
            return ExitCode::from(Exit::Fatal);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(exit) => ExitCode::from(exit),
        Err(error) => {
            stderr_line(&format!("error: {}", error_chain(&error)));
            ExitCode::from(Exit::Fatal)
        }
    }
}

/// The duplicate check's tables grow to tens of megabytes on a million-row file, and each
/// growth frees the old table. glibc raises its mmap threshold to the size of a freed mapped
/// block, so the next tables came from the heap and their freed predecessors stayed behind as
/// fragments: `validate` of 1M rows peaked at 69.5 MiB instead of 55 MiB (bench/results.md).
/// A fixed 1 MiB threshold keeps every large block mapped and returned whole when freed.
fn keep_big_allocations_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes glibc's allocator; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
