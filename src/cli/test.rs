//! `eddy test --statements S.sql [--input I.json] --output O.json`: ksqlDB's
//! `ksql-test-runner`, run against Eddy.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, print_line};
use crate::conformance::{Outcome, runner::run_case, test_runner};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The statements to run.
    #[arg(long, short = 's')]
    statements: PathBuf,
    /// The input records, `{"inputs": [{"topic", "key", "value", "timestamp"}, …]}`.
    #[arg(long, short = 'i')]
    input: Option<PathBuf>,
    /// The expected output records, `{"outputs": [...]}`.
    #[arg(long, short = 'o')]
    output: PathBuf,
}

pub async fn run(args: TestArgs) -> Result<(), CliError> {
    let case = test_runner::load(&args.statements, args.input.as_deref(), &args.output).map_err(|e| {
        let _ = print_line(format_args!(">>> Test failed: {e}"));
        CliError::User(e)
    })?;
    match run_case(&case).await {
        Outcome::Pass => print_line(format_args!(">>> Test passed!")),
        Outcome::Fail(reason) => {
            print_line(format_args!(">>> Test failed: {reason}"))?;
            Err(CliError::User("the test failed".into()))
        }
        Outcome::Skip(reason) => {
            print_line(format_args!(">>> Test not run: {reason}"))?;
            Err(CliError::User(format!("the test needs what Eddy does not have yet: {reason}")))
        }
    }
}
