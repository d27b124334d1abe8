//! Conformance with ksqlDB, from its own test files in `../shared/qtt` (read there, never
//! copied): the ksql-test-runner cases, and a ratchet by name over every QTT and REST case —
//! each case `tests/qtt-passing.txt` names must still pass.

use std::path::{Path, PathBuf};

use eddy::conformance::{Outcome, qtt_files, run_file, runner::run_case, test_runner};

/// ksqlDB's test files: `$EDDY_QTT_DIR`, else `../shared/qtt` beside the checkout, else the
/// machine's shared copy (a clone elsewhere, as CI makes, still finds them).
pub fn shared_qtt() -> PathBuf {
    let candidates = [
        std::env::var_os("EDDY_QTT_DIR").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/qtt")),
        Some(PathBuf::from("/work/shared/qtt")),
    ];
    candidates.into_iter().flatten().find(|p| p.join("query-validation-tests").is_dir()).unwrap_or_else(|| {
        panic!("ksqlDB's QTT files are not found: set EDDY_QTT_DIR to the directory holding query-validation-tests/")
    })
}

async fn run_test_runner_case(dir: &Path) -> Outcome {
    let input = dir.join("input.json");
    let input = input.exists().then_some(input);
    match test_runner::load(&dir.join("statements.sql"), input.as_deref(), &dir.join("output.json")) {
        Ok(case) => run_case(&case).await,
        Err(e) => Outcome::Fail(e),
    }
}

#[tokio::test]
async fn ksql_test_runner_cases_pass_or_fail_as_ksqldb_says() {
    let root = shared_qtt().join("test-runner");
    // Every case of correct/ (multi_join in AVRO, through the embedded schema registry).
    for case in
        ["aggregate", "from_docs", "join", "multi_insert_into", "multi_join", "simple_project_filter", "stream_no_keys"]
    {
        let outcome = run_test_runner_case(&root.join("correct").join(case)).await;
        assert_eq!(outcome, Outcome::Pass, "correct/{case}");
    }
    for entry in std::fs::read_dir(root.join("incorrect")).unwrap() {
        let dir = entry.unwrap().path();
        let outcome = run_test_runner_case(&dir).await;
        assert!(matches!(outcome, Outcome::Fail(_)), "{}: {outcome:?}", dir.display());
    }
}

/// The passing cases, as `tests/qtt-passing.txt` lists them: `DIR/FILE.json: case name`.
fn listed_passing() -> Vec<String> {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PASSING))
        .expect(PASSING)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

const PASSING: &str = "tests/qtt-passing.txt";

/// Every case of `../shared/qtt` (the QTT files and the REST files, the latter against
/// `eddy server`) that `tests/qtt-passing.txt` names must pass: a ratchet by name, so a case
/// that starts failing is caught even when another starts passing. With
/// `EDDY_QTT_UPDATE=1` the file is rewritten with the cases that pass now.
#[tokio::test]
async fn qtt_cases_that_passed_still_pass() {
    let root = shared_qtt();
    let mut passing = Vec::new();
    let mut totals = eddy::conformance::Counts::default();
    for dir in ["query-validation-tests", "rest-query-validation-tests"] {
        for file in qtt_files(&[root.join(dir)]).unwrap() {
            let name = format!("{dir}/{}", file.file_name().unwrap().to_string_lossy());
            let counts = run_file(&file, &mut |case, outcome| {
                if *outcome == Outcome::Pass {
                    passing.push(format!("{name}: {case}"));
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            totals.passed += counts.passed;
            totals.failed += counts.failed;
            totals.skipped += counts.skipped;
        }
    }
    if std::env::var_os("EDDY_QTT_UPDATE").is_some() {
        let header = "# The QTT cases of ../shared/qtt that pass (tests/integration/conformance.rs): each must go on\n\
                      # passing. Regenerate with EDDY_QTT_UPDATE=1 cargo test --test integration qtt_cases_that_passed.\n";
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(PASSING),
            format!("{header}{}\n", passing.join("\n")),
        )
        .unwrap();
    }
    let mut now: Vec<&String> = passing.iter().collect();
    now.sort();
    let mut lost = Vec::new();
    for case in listed_passing() {
        match now.binary_search(&&case) {
            Ok(i) => {
                now.remove(i);
            }
            Err(_) => lost.push(case),
        }
    }
    println!(
        "QTT: {} passed, {} failed, {} skipped; {} pass that {PASSING} does not list yet",
        totals.passed,
        totals.failed,
        totals.skipped,
        now.len()
    );
    assert!(lost.is_empty(), "{} listed QTT cases no longer pass:\n{}", lost.len(), lost.join("\n"));
}
