//! ksqlDB's `ksql-test-runner` files (`eddy test`): a statements file, an optional input file
//! `{"inputs": [records…]}` and an output file `{"outputs": [records…]}`, records in QTT's
//! form. The case runs as a QTT case does, except that every topic a persistent query writes
//! is compared, so unexpected output fails the test too.

use std::path::Path;

use serde::Deserialize;

use super::qtt::{TestCase, TestNode, TestRecord};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputFile {
    inputs: Vec<TestRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputFile {
    outputs: Vec<TestRecord>,
}

/// Reads the three files into a case; a file that cannot be read or is not in the format
/// is an error naming it.
pub fn load(statements: &Path, input: Option<&Path>, output: &Path) -> Result<TestCase, String> {
    let read = |path: &Path| std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    let sql = read(statements)?;
    let inputs = match input {
        Some(path) => {
            let file: InputFile = serde_json::from_str(&read(path)?)
                .map_err(|e| format!("{} is not an input file ({{\"inputs\": [...]}}): {e}", path.display()))?;
            file.inputs
        }
        None => Vec::new(),
    };
    let outputs: OutputFile = serde_json::from_str(&read(output)?)
        .map_err(|e| format!("{} is not an output file ({{\"outputs\": [...]}}): {e}", output.display()))?;
    let node = TestNode {
        name: statements.display().to_string(),
        format: Vec::new(),
        config: Vec::new(),
        properties: Default::default(),
        enabled: None,
        statements: vec![sql],
        topics: Vec::new(),
        inputs,
        outputs: outputs.outputs,
        expected_exception: None,
        post: None,
        responses: None,
        expected_error: None,
        proto_responses: false,
    };
    Ok(TestCase { name: node.name.clone(), node, check_all_sinks: true })
}
