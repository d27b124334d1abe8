//! The `eddy` binary: parse flags, set up logging and the runtime, run, map errors to exit
//! codes (0 ok, 1 user error, 2 internal error).

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

/// mimalloc keeps freed memory for reuse: the log's read buffers (a megabyte or more each,
/// freed as their records are decoded) cost glibc a fresh mapping, page faults and zeroed
/// pages every time, a third of reading (see docs/benchmarks.md, session 9).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match eddy::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            };
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rdkafka=error")),
        )
        .init();
    // A panic that input reached is caught where it happens and reported as an error; the
    // hook only records where it was, on one line.
    std::panic::set_hook(Box::new(|info| tracing::error!("internal error (this is a bug): {info}")));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(eddy::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
