//! The fuzz targets, run for a bounded number of inputs from fixed seeds (reproducible);
//! `eddy fuzz TARGET --seconds N` runs them for longer (docs/robustness.md).

use std::time::Duration;

use eddy::fuzz::{Budget, Target, run};

#[test]
fn no_fuzz_input_panics_or_breaks_a_decoder_or_the_segment_reader() {
    for (target, inputs) in
        [(Target::Sql, 5_000), (Target::Json, 20_000), (Target::Delimited, 10_000), (Target::Segment, 2_000)]
    {
        let report = run(target, 20261122, Budget { inputs, time: Duration::from_secs(20) });
        if let Some((input, problem)) = report.failure {
            panic!("fuzz {}: {problem}\ninput: {:?}", target.name(), String::from_utf8_lossy(&input));
        }
        assert!(report.inputs > 0);
    }
}
