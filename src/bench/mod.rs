//! `eddy bench`: benchmarks. Never part of the test suite; results go to
//! `docs/benchmarks.md` with the command that produced them.

pub mod log_bench;

use clap::Subcommand;

use crate::cli::CliError;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append and read throughput of the embedded log, beside plain file I/O of the same bytes.
    #[command(after_help = "Example:\n  cargo run --release -- bench log --records 5000000")]
    Log(log_bench::LogBenchArgs),
}

pub async fn run(command: BenchCommand) -> Result<(), CliError> {
    match command {
        BenchCommand::Log(args) => log_bench::run(args).await,
    }
}
