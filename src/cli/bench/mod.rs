//! `eddy bench`: benchmarks. Never part of the test suite; results go to
//! `docs/benchmarks.md` with the command that produced them.

pub mod bids;
pub mod json;
pub mod latency;
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
    /// The Flink SQL peer's Nexmark-style queries over a bids file: Eddy, then DataFusion batch.
    #[command(
        after_help = "Example:\n  ../shared/peers/flink/gen_bids.py 1000000 /tmp/bids.jsonl\n  cargo run --release -- bench bids --input /tmp/bids.jsonl --query q5"
    )]
    Bids(bids::BidsBenchArgs),
    /// JSON readers (arrow-json, Eddy's one-pass decoder; simd-json and sonic-rs with
    /// `--features json-parsers`) decoding the bids file into Arrow batches on one core.
    #[command(
        after_help = "Example:\n  cargo run --release --features json-parsers -- bench json --input /tmp/bids.jsonl"
    )]
    Json(json::JsonBenchArgs),
    /// Produce-to-output latency of a persistent query at a fixed input rate.
    #[command(after_help = "Example:\n  cargo run --release -- bench latency --rate 50000 --seconds 10")]
    Latency(latency::LatencyBenchArgs),
}

pub async fn run(command: BenchCommand) -> Result<(), CliError> {
    match command {
        BenchCommand::Log(args) => log_bench::run(args).await,
        BenchCommand::Query(args) => query_bench::run(args).await,
        BenchCommand::Bids(args) => bids::run(args).await,
        BenchCommand::Json(args) => json::run(args).await,
        BenchCommand::Latency(args) => latency::run(args).await,
    }
}
