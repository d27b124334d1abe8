//! Conformance with ksqlDB: its QTT files (`eddy qtt`) run against Eddy.
//!
//! - `qtt`: the file model, loading and `format`/`config` expansion;
//! - `runner`: one case on a fresh embedded log, inputs fed one at a time;
//! - `rest`: REST cases (expected HTTP responses) against `eddy server`;
//! - `records`: test keys and values to and from the bytes of a topic;
//! - `compare`: expected against actual, as ksqlDB's comparator does;
//! - `test_runner`: ksqlDB's `ksql-test-runner` files (`eddy test`).

mod avro;
pub mod compare;
pub mod qtt;
pub mod records;
mod rest;
pub mod runner;
pub mod test_runner;

use std::path::{Path, PathBuf};

pub use runner::Outcome;

/// The QTT files under `paths` (files as given, directories' `*.json` sorted by name).
pub fn qtt_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok(files)
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail(_) => self.failed += 1,
            Outcome::Skip(_) => self.skipped += 1,
        }
    }
}

/// Runs every case of one file, handing each outcome to `report` as it comes.
pub async fn run_file(path: &Path, report: &mut dyn FnMut(&str, &Outcome)) -> Result<Counts, String> {
    let cases = qtt::load(path)?;
    let mut counts = Counts::default();
    for case in &cases {
        let outcome = runner::run_case(case).await;
        counts.add(&outcome);
        report(&case.name, &outcome);
    }
    Ok(counts)
}
