//! Eddy: a streaming SQL engine in the spirit of ksqlDB.
//!
//! # Layout
//! Modules from the bottom layer up (see [`LAYERS`]):
//! - [`error`]: what kind of failure an error is (the user's, outside Eddy's, a bug);
//! - [`config`]: Eddy's own properties (`eddy.*`), typed and checked;
//! - [`sql`]: the SQL front end — ksqlDB's dialect parsed by wrapping sqlparser;
//! - [`http`]: the HTTP/1.1 client (the remote REPL, a remote schema registry);
//! - [`log`]: topics — the [`log::Log`] trait, the embedded log, Kafka, a producer;
//! - [`registry`]: a schema registry speaking Confluent's REST API, kept in a topic;
//! - [`format`](mod@format): KAFKA, JSON, DELIMITED and NONE keys and values to and from Arrow;
//! - [`catalog`]: streams, tables and types, validated, with Arrow schemas;
//! - [`engine`]: running plans — a query's source, operator and sink tasks over Arrow
//!   batches, its checkpoints and processing log;
//! - [`connect`]: connectors, bridges between topics and the outside world (the seam; the
//!   connectors themselves come with `CREATE … CONNECTOR`);
//! - [`planner`]: SQL and the catalog's sources into the engine's plans and operators;
//! - [`session`]: `Session::execute`, the one path statements run through;
//! - [`server`]: ksqlDB's REST API over a session (`eddy server`);
//! - [`conformance`]: ksqlDB's QTT files run against Eddy (`eddy qtt`, `eddy test`);
//! - [`fuzz`]: the fuzz targets (`eddy fuzz`);
//! - [`cli`]: the `eddy` command line (argument parsing, the `topic` commands, and
//!   `eddy bench`, never part of the tests).
//!
//! Each module uses only those below it in [`LAYERS`] (a test holds it to that).

pub mod catalog;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod connect;
pub mod engine;
pub mod error;
pub mod format;
pub mod fuzz;
pub mod http;
pub mod log;
pub mod planner;
pub mod registry;
pub mod server;
pub mod session;
pub mod sql;

/// Eddy's modules, each using only those before it (`crate::…` paths in code).
pub const LAYERS: [&str; 16] = [
    "error",
    "config",
    "sql",
    "http",
    "log",
    "registry",
    "format",
    "catalog",
    "engine",
    "connect",
    "planner",
    "session",
    "server",
    "conformance",
    "fuzz",
    "cli",
];

#[cfg(test)]
mod tests {
    use super::LAYERS;

    /// The `crate::…` modules that the code (not its comments) of `path` names.
    fn used_modules(path: &std::path::Path, used: &mut std::collections::BTreeSet<String>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                used_modules(&entry.unwrap().path(), used);
            }
            return;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            return;
        }
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (at, _) in code.match_indices("crate::") {
                let name: String = code[at + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                used.insert(name);
            }
        }
    }

    #[test]
    fn each_layer_uses_only_the_layers_below_it() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for (level, layer) in LAYERS.iter().enumerate() {
            let mut used = std::collections::BTreeSet::new();
            let dir = src.join(layer);
            let path = if dir.is_dir() { dir } else { src.join(format!("{layer}.rs")) };
            used_modules(&path, &mut used);
            if *layer == "cli" {
                assert!(used.contains("session"), "the scan finds nothing: {used:?}");
            }
            for name in used.iter().filter(|n| n.as_str() != *layer) {
                let below = LAYERS[..level].contains(&name.as_str());
                assert!(below, "{layer} uses crate::{name}, which is not a layer below it (see LAYERS)");
            }
        }
        // Every module is a layer.
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if !["lib", "main"].contains(&name.as_str()) && path.extension().is_none_or(|e| e == "rs") {
                assert!(LAYERS.contains(&name.as_str()), "{name} is in no layer (see LAYERS)");
            }
        }
    }
}
