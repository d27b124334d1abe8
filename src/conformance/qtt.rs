//! ksqlDB's QTT files: loading (JSON with `//` comments), the case model, and the expansion
//! of `format` and `config` lists into one case per value.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// One record of `inputs` or `outputs`.
#[derive(Debug, Clone, Deserialize)]
pub struct TestRecord {
    pub topic: String,
    #[serde(default)]
    pub key: Option<Value>,
    #[serde(default)]
    pub value: Value,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub window: Option<Value>,
    #[serde(default)]
    pub headers: Option<Vec<TestHeader>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TestHeader {
    #[serde(rename = "KEY")]
    pub key: String,
    #[serde(rename = "VALUE", default)]
    pub value: Option<String>,
}

/// A topic named in `topics` (its partitions; schemas mean a schema registry).
#[derive(Debug, Clone, Deserialize)]
pub struct TestTopic {
    pub name: String,
    #[serde(default)]
    pub partitions: Option<u32>,
    /// The schemas as written (a JSON Schema's properties are columns in their order).
    #[serde(rename = "valueSchema", default)]
    pub value_schema: Option<Box<serde_json::value::RawValue>>,
    #[serde(rename = "keySchema", default)]
    pub key_schema: Option<Box<serde_json::value::RawValue>>,
    /// The id the value's schema is registered with (else the registry's next).
    #[serde(rename = "valueSchemaId", default)]
    pub value_schema_id: Option<u32>,
    #[serde(rename = "keySchemaId", default)]
    pub key_schema_id: Option<u32>,
    /// Schemas the value's schema refers to (imports), each registered under its name.
    #[serde(rename = "valueSchemaReferences", default)]
    pub value_schema_references: Vec<TestReference>,
    #[serde(rename = "keySchemaReferences", default)]
    pub key_schema_references: Vec<TestReference>,
    #[serde(rename = "valueFormat", default)]
    pub value_format: Option<String>,
    #[serde(rename = "keyFormat", default)]
    pub key_format: Option<String>,
}

/// A schema another refers to: its name (as imported) and its text.
#[derive(Debug, Clone, Deserialize)]
pub struct TestReference {
    pub name: String,
    #[serde(default)]
    pub format: Option<String>,
    pub schema: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExpectedException {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// One test node as the file has it.
#[derive(Debug, Clone, Deserialize)]
pub struct TestNode {
    pub name: String,
    #[serde(default)]
    pub format: Vec<String>,
    #[serde(default)]
    pub config: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    #[serde(default)]
    pub enabled: Option<bool>,
    pub statements: Vec<String>,
    #[serde(default)]
    pub topics: Vec<TestTopic>,
    #[serde(default)]
    pub inputs: Vec<TestRecord>,
    #[serde(default)]
    pub outputs: Vec<TestRecord>,
    #[serde(rename = "expectedException", default)]
    pub expected_exception: Option<ExpectedException>,
    #[serde(default)]
    pub post: Option<Value>,
    /// A REST case's expected responses: `{"admin": entity}` or `{"query": [header, rows…]}`.
    #[serde(default)]
    pub responses: Option<Vec<Value>>,
    /// A REST case's expected error: `{"type", "message", "status"}`.
    #[serde(rename = "expectedError", default)]
    pub expected_error: Option<Value>,
    /// A REST case that also expects pull queries' answers in protobuf.
    #[serde(rename = "testPullWithProtoFormat", default)]
    pub proto_responses: bool,
}

#[derive(Debug, Deserialize)]
struct TestFile {
    tests: Vec<TestNode>,
}

/// A case to run: a test node with its `format` / `config` placeholders filled in.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub node: TestNode,
    /// Compare every topic a persistent query writes, not only those the outputs name
    /// (ksql-test-runner checks that nothing else was written).
    pub check_all_sinks: bool,
}

/// Reads a QTT file into its cases, expanded.
pub fn load(path: &Path) -> Result<Vec<TestCase>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: TestFile = serde_json::from_str(&strip_comments(&text))
        .map_err(|e| format!("{} is not a QTT file: {e}", path.display()))?;
    Ok(file.tests.into_iter().flat_map(expand).collect())
}

/// One case per `format` entry and per `config` entry.
fn expand(node: TestNode) -> Vec<TestCase> {
    let mut cases = vec![TestCase { name: node.name.clone(), node, check_all_sinks: false }];
    let formats = cases[0].node.format.clone();
    if !formats.is_empty() {
        cases = cases
            .into_iter()
            .flat_map(|case| {
                formats.iter().map(move |format| {
                    let mut node = case.node.clone();
                    replace_in_node(&mut node, "{FORMAT}", format);
                    TestCase { name: format!("{} - {format}", case.name), node, check_all_sinks: false }
                })
            })
            .collect();
    }
    let configs = cases[0].node.config.clone();
    if !configs.is_empty() {
        cases = cases
            .into_iter()
            .flat_map(|case| {
                configs.iter().map(move |config| {
                    let mut node = case.node.clone();
                    for value in node.properties.values_mut() {
                        if let Value::String(s) = value {
                            *s = s.replace("{CONFIG}", config);
                        }
                    }
                    TestCase { name: format!("{} - {config}", case.name), node, check_all_sinks: false }
                })
            })
            .collect();
    }
    cases
}

fn replace_in_node(node: &mut TestNode, placeholder: &str, value: &str) {
    for statement in node.statements.iter_mut() {
        *statement = statement.replace(placeholder, value);
    }
    if let Some(exception) = node.expected_exception.as_mut()
        && let Some(message) = exception.message.as_mut()
    {
        *message = message.replace(placeholder, value);
    }
}

/// JSON with `//` line comments (outside strings) turned into plain JSON.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(escaped) = chars.next() {
                        out.push(escaped);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_go_strings_stay() {
        let text = "{\"a\": \"x // y\", // gone\n\"b\": 1}";
        let value: Value = serde_json::from_str(&strip_comments(text)).unwrap();
        assert_eq!(value["a"], "x // y");
        assert_eq!(value["b"], 1);
    }

    #[test]
    fn formats_expand_into_cases() {
        let node: TestNode = serde_json::from_value(serde_json::json!({
            "name": "n", "format": ["JSON", "AVRO"],
            "statements": ["CREATE STREAM s (a INT) WITH (value_format='{FORMAT}');"]
        }))
        .unwrap();
        let cases = expand(node);
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1].name, "n - AVRO");
        assert!(cases[1].node.statements[0].contains("'AVRO'"));
    }
}
