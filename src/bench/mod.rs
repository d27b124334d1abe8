//! `eddy bench`: benchmarks. Never part of the test suite; results go to
//! `docs/benchmarks.md` with the command that produced them.

pub mod log_bench;
pub mod query_bench;

use clap::Subcommand;

use crate::cli::CliError;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append and read throughput of the embedded log, beside plain file I/O of the same bytes.
    #[command(after_help = "Example:\n  cargo run --release -- bench log --records 5000000")]
    Log(log_bench::LogBenchArgs),
    /// Throughput of a persistent query (filter and projection over JSON) end to end.
    #[command(after_help = "Example:\n  cargo run --release -- bench query --records 2000000")]
    Query(query_bench::QueryBenchArgs),
}

pub async fn run(command: BenchCommand) -> Result<(), CliError> {
    match command {
        BenchCommand::Log(args) => log_bench::run(args).await,
        BenchCommand::Query(args) => query_bench::run(args).await,
    }
}
