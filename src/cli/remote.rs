//! `eddy --server URL`: the REPL as a client of `eddy server` (or of ksqlDB), through the
//! REST API, showing results as the local REPL does.
//!
//! As ksqlDB's CLI does, `SET`/`UNSET` and `DEFINE`/`UNDEFINE` stay in the client and go with
//! every request (`streamsProperties`, `sessionVariables`); queries go to `/query-stream`
//! (rows shown as they arrive), `PRINT` to `/query`, everything else to `/ksql`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::http::Client;
use crate::session::{Session, StatementResult, push_layout};
use crate::sql::ast::Statement;

pub struct RemoteSession {
    client: Client,
    pub url: String,
    properties: BTreeMap<String, String>,
    variables: BTreeMap<String, String>,
}

impl RemoteSession {
    /// Connects: the server must answer `/info`.
    pub async fn connect(url: &str) -> Result<RemoteSession, String> {
        let client = Client::new(url)?;
        let response = client.request("GET", "/info", "", "application/json").await?;
        let status = response.status;
        let body = response.text().await?;
        if status != 200 {
            return Err(format!("{url} answered {status}: {body}"));
        }
        let info: Value = serde_json::from_str(&body).map_err(|_| format!("{url} is not a ksqlDB server: {body}"))?;
        if info["KsqlServerInfo"].is_null() {
            return Err(format!("{url} is not a ksqlDB server: {body}"));
        }
        Ok(RemoteSession { client, url: url.to_string(), properties: BTreeMap::new(), variables: BTreeMap::new() })
    }

    /// Runs each statement of `script`, showing results through `show` as they come; stops
    /// at the first failure.
    pub async fn execute(&mut self, script: &str, show: &mut dyn FnMut(StatementResult)) -> Result<(), String> {
        let statements = Session::statements(script).map_err(|e| e.to_string())?;
        for statement in statements {
            let text = format!("{};", statement.trim());
            match crate::sql::parse_one(&text) {
                Ok(Statement::Set { name, value }) => {
                    show(StatementResult::status(format!(
                        "Successfully changed local property '{name}' to '{value}'. Use the UNSET command to revert \
                         your change."
                    )));
                    self.properties.insert(name, value);
                }
                Ok(Statement::Unset { name }) => match self.properties.remove(&name) {
                    Some(_) => show(StatementResult::status(format!("Successfully unset local property '{name}'."))),
                    None => return Err(format!("Property '{name}' is not set")),
                },
                Ok(Statement::Define { name, value }) => {
                    self.variables.insert(name.value.to_lowercase(), value);
                }
                Ok(Statement::Undefine { name }) => {
                    self.variables.remove(&name.value.to_lowercase());
                }
                Ok(Statement::Select(query)) => self.query(&text, query.emit.is_some(), show).await?,
                Ok(Statement::Print(_)) => self.print(&text, show).await?,
                // Anything else (and what does not parse here) is the server's to judge.
                _ => self.ksql(&text, show).await?,
            }
        }
        Ok(())
    }

    /// The names of the server's streams, tables and queries (for completion).
    pub async fn names(&self) -> Vec<String> {
        let body = json!({"ksql": "SHOW STREAMS; SHOW TABLES; SHOW QUERIES;"}).to_string();
        let Ok(response) = self.client.request("POST", "/ksql", &body, "application/json").await else {
            return Vec::new();
        };
        let Ok(entities) = response.text().await.map(|t| serde_json::from_str::<Value>(&t).unwrap_or_default()) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for entity in entities.as_array().into_iter().flatten() {
            for list in ["streams", "tables"] {
                names.extend(entity[list].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()));
            }
            names.extend(entity["queries"].as_array().into_iter().flatten().filter_map(|q| q["id"].as_str()));
        }
        names.into_iter().map(str::to_string).collect()
    }

    fn properties(&self) -> Value {
        json!(self.properties)
    }

    async fn ksql(&self, text: &str, show: &mut dyn FnMut(StatementResult)) -> Result<(), String> {
        let body = json!({"ksql": text, "streamsProperties": self.properties(), "sessionVariables": self.variables})
            .to_string();
        let response = self.client.request("POST", "/ksql", &body, "application/json").await?;
        let status = response.status;
        let answer: Value = serde_json::from_str(&response.text().await?).unwrap_or_default();
        if status != 200 {
            return Err(answer["message"].as_str().map_or_else(|| format!("HTTP {status}: {answer}"), str::to_string));
        }
        for entity in answer.as_array().into_iter().flatten() {
            show(shown(entity));
        }
        Ok(())
    }

    async fn query(&self, text: &str, push: bool, show: &mut dyn FnMut(StatementResult)) -> Result<(), String> {
        let body =
            json!({"sql": text, "properties": self.properties(), "sessionVariables": self.variables}).to_string();
        let mut response =
            self.client.request("POST", "/query-stream", &body, "application/vnd.ksqlapi.delimited.v1").await?;
        if response.status != 200 {
            let status = response.status;
            let answer: Value = serde_json::from_str(&response.text().await?).unwrap_or_default();
            return Err(answer["message"].as_str().map_or_else(|| format!("HTTP {status}: {answer}"), str::to_string));
        }
        let Some(metadata) = response.next_line().await? else { return Ok(()) };
        let metadata: Value = serde_json::from_str(&metadata).map_err(|e| format!("a bad answer: {e}"))?;
        let columns: Vec<String> = metadata["columnNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str())
            .map(str::to_string)
            .collect();
        let widths = push_layout::widths(&columns);
        let mut rows = Vec::new();
        if push {
            let rule = push_layout::rule(&widths);
            show(StatementResult::Line(rule.clone()));
            show(StatementResult::Line(push_layout::row(&columns, &widths)));
            show(StatementResult::Line(rule));
        }
        while let Some(line) = response.next_line().await? {
            let value: Value = serde_json::from_str(&line).map_err(|e| format!("a bad row {line:?}: {e}"))?;
            let Some(cells) = value.as_array() else {
                // An error written in the stream.
                return Err(value["message"].as_str().unwrap_or(&line).to_string());
            };
            let cells: Vec<String> = cells.iter().map(cell).collect();
            if push {
                show(StatementResult::Line(push_layout::row(&cells, &widths)));
            } else {
                rows.push(cells);
            }
        }
        if !push {
            show(StatementResult::Table { title: None, columns, rows });
        }
        Ok(())
    }

    async fn print(&self, text: &str, show: &mut dyn FnMut(StatementResult)) -> Result<(), String> {
        let body = json!({"ksql": text, "streamsProperties": self.properties()}).to_string();
        let mut response = self.client.request("POST", "/query", &body, "application/json").await?;
        if response.status != 200 {
            let answer: Value = serde_json::from_str(&response.text().await?).unwrap_or_default();
            return Err(answer["message"].as_str().unwrap_or("PRINT failed").to_string());
        }
        while let Some(line) = response.next_line().await? {
            show(StatementResult::Line(line));
        }
        Ok(())
    }
}

/// A value as a cell: text bare, `null`, anything else as JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// An entity as the local REPL shows the same result.
fn shown(entity: &Value) -> StatementResult {
    let text = |v: &Value| cell(v);
    let rows = |list: &Value, fields: &[&str]| -> Vec<Vec<String>> {
        list.as_array().into_iter().flatten().map(|item| fields.iter().map(|f| text(&item[*f])).collect()).collect()
    };
    match entity["@type"].as_str().unwrap_or_default() {
        "currentStatus" => StatementResult::status(text(&entity["commandStatus"]["message"])),
        "warning_entity" => StatementResult::status(text(&entity["message"])),
        "streams" => StatementResult::table(
            &["Stream Name", "Kafka Topic", "Key Format", "Value Format", "Windowed"],
            rows(&entity["streams"], &["name", "topic", "keyFormat", "valueFormat", "isWindowed"]),
        ),
        "tables" => StatementResult::table(
            &["Table Name", "Kafka Topic", "Key Format", "Value Format", "Windowed"],
            rows(&entity["tables"], &["name", "topic", "keyFormat", "valueFormat", "isWindowed"]),
        ),
        "kafka_topics" => StatementResult::table(
            &["Kafka Topic", "Partitions", "Partition Replicas"],
            entity["topics"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let replicas = t["replicaInfo"].as_array().map_or(0, Vec::len);
                    vec![text(&t["name"]), replicas.to_string(), "1".into()]
                })
                .collect(),
        ),
        "queries" => StatementResult::table(
            &["Query ID", "Query Type", "Status", "Sink Name", "Sink Kafka Topic", "Query String"],
            entity["queries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|q| {
                    vec![
                        text(&q["id"]),
                        text(&q["queryType"]),
                        text(&q["state"]),
                        text(&q["sinks"][0]),
                        text(&q["sinkKafkaTopics"][0]),
                        text(&q["queryString"]),
                    ]
                })
                .collect(),
        ),
        "properties" => StatementResult::table(
            &["Property", "Scope", "Value"],
            rows(&entity["properties"], &["name", "scope", "value"]),
        ),
        "variables" => {
            StatementResult::table(&["Variable Name", "Value"], rows(&entity["variables"], &["name", "value"]))
        }
        "sourceDescription" => {
            let d = &entity["sourceDescription"];
            let title = format!(
                "Name: {}\nType: {}\nKafka topic: {}\nKey format: {}\nValue format: {}",
                text(&d["name"]),
                text(&d["type"]),
                text(&d["topic"]),
                text(&d["keyFormat"]),
                text(&d["valueFormat"])
            );
            let fields = d["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    let role = match f["type"].as_str() {
                        Some("KEY") if d["type"] == "TABLE" => " (primary key)",
                        Some("KEY") => " (key)",
                        Some("HEADER") => " (header)",
                        _ => "",
                    };
                    vec![text(&f["name"]), format!("{}{role}", text(&f["schema"]["type"]))]
                })
                .collect();
            StatementResult::Table { title: Some(title), columns: vec!["Field".into(), "Type".into()], rows: fields }
        }
        _ => StatementResult::Line(serde_json::to_string_pretty(entity).unwrap_or_default()),
    }
}
