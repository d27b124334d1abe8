//! Conformance with ksqlDB, from its own test files in `../shared/qtt` (read there, never
//! copied): the ksql-test-runner cases, and a ratchet over the QTT files issue 3 names — a
//! file may not pass fewer cases than `tests/qtt-baseline.txt` records.

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
    // Every case of correct/ but multi_join, which needs AVRO.
    for case in ["aggregate", "from_docs", "join", "multi_insert_into", "simple_project_filter", "stream_no_keys"] {
        let outcome = run_test_runner_case(&root.join("correct").join(case)).await;
        assert_eq!(outcome, Outcome::Pass, "correct/{case}");
    }
    for entry in std::fs::read_dir(root.join("incorrect")).unwrap() {
        let dir = entry.unwrap().path();
        let outcome = run_test_runner_case(&dir).await;
        assert!(matches!(outcome, Outcome::Fail(_)), "{}: {outcome:?}", dir.display());
    }
}

#[tokio::test]
async fn qtt_conformance_does_not_regress() {
    let baseline_text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qtt-baseline.txt"))
        .expect("tests/qtt-baseline.txt");
    let root = shared_qtt().join("query-validation-tests");
    let mut report = String::new();
    let mut regressions = Vec::new();
    for line in baseline_text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (file, minimum) = line.split_once(char::is_whitespace).expect("`file passed` lines");
        let minimum: usize = minimum.trim().parse().expect("a count");
        let files = qtt_files(&[root.join(file)]).unwrap();
        let mut failures = Vec::new();
        let counts = run_file(&files[0], &mut |name, outcome| {
            if let Outcome::Fail(why) = outcome {
                failures.push(format!("  {name}: {}", why.lines().next().unwrap_or_default()));
            }
        })
        .await
        .unwrap();
        report.push_str(&format!(
            "{file}: {} passed, {} failed, {} skipped\n",
            counts.passed, counts.failed, counts.skipped
        ));
        if counts.passed < minimum {
            regressions.push(format!(
                "{file}: {} passed, fewer than {minimum}\n{}",
                counts.passed,
                failures.join("\n")
            ));
        }
    }
    assert!(regressions.is_empty(), "QTT regressions:\n{}\n\nall files:\n{report}", regressions.join("\n"));
}
