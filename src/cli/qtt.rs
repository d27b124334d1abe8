//! `eddy qtt PATH…`: runs ksqlDB's QTT files, one line per case, then the counts.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, print_line};
use crate::conformance::{Counts, Outcome, qtt_files, run_file};

#[derive(Debug, Args)]
pub struct QttArgs {
    /// QTT JSON files, or directories of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only print failures (and the counts).
    #[arg(long)]
    failures_only: bool,
    /// After the cases, a table of counts per file (Markdown).
    #[arg(long)]
    per_file: bool,
}

pub async fn run(args: QttArgs) -> Result<(), CliError> {
    let files = qtt_files(&args.paths).map_err(CliError::User)?;
    let mut total = Counts::default();
    let mut per_file: Vec<(String, Counts)> = Vec::new();
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut printed = Ok(());
        let mut report = |case: &str, outcome: &Outcome| {
            let line = match outcome {
                Outcome::Pass if args.failures_only => return,
                Outcome::Skip(_) if args.failures_only => return,
                Outcome::Pass => format!("PASS {name}: {case}"),
                Outcome::Fail(reason) => format!("FAIL {name}: {case}: {}", one_line(reason)),
                Outcome::Skip(reason) => format!("SKIP {name}: {case}: {}", one_line(reason)),
            };
            if printed.is_ok() {
                printed = print_line(format_args!("{line}"));
            }
        };
        let counts = match run_file(file, &mut report).await {
            Ok(counts) => counts,
            Err(e) => {
                print_line(format_args!("FAIL {name}: {e}"))?;
                Counts { failed: 1, ..Counts::default() }
            }
        };
        printed?;
        total.passed += counts.passed;
        total.failed += counts.failed;
        total.skipped += counts.skipped;
        per_file.push((name, counts));
    }
    if args.per_file {
        print_line(format_args!(
            "\n| file | passed | failed | skipped | pass rate of run cases |\n|---|---:|---:|---:|---:|"
        ))?;
        for (name, c) in &per_file {
            let run = c.passed + c.failed;
            let rate =
                if run == 0 { "–".to_string() } else { format!("{:.0}%", 100.0 * c.passed as f64 / run as f64) };
            print_line(format_args!("| {name} | {} | {} | {} | {rate} |", c.passed, c.failed, c.skipped))?;
        }
    }
    print_line(format_args!("{} passed, {} failed, {} skipped", total.passed, total.failed, total.skipped))?;
    if total.failed > 0 {
        return Err(CliError::User(format!("{} case(s) failed", total.failed)));
    }
    Ok(())
}

/// A reason on one line.
fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}
