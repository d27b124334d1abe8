//! Eddy: a streaming SQL engine in the spirit of ksqlDB.
//!
//! # Layout
//! Modules in data-flow order:
//! - [`session`]: `Session::execute`, the one path statements run through;
//! - [`sql`]: the SQL front end — ksqlDB's dialect parsed by wrapping sqlparser;
//! - [`catalog`]: streams, tables and types, validated, with Arrow schemas;
//! - [`config`]: Eddy's own properties (`eddy.*`), typed and checked;
//! - [`error`]: what kind of failure an error is (the user's, outside Eddy's, a bug);
//! - [`engine`]: running queries — sources decoded into batches, plans applied per batch;
//! - [`format`]: KAFKA, JSON and DELIMITED keys and values to and from Arrow;
//! - [`log`]: topics — the [`log::Log`] trait, the embedded log, Kafka's partitioner, a
//!   producer;
//! - [`conformance`]: ksqlDB's QTT files run against Eddy (`eddy qtt`);
//! - [`server`]: ksqlDB's REST API over a session (`eddy server`);
//! - [`cli`]: the `eddy` command line (argument parsing and the `topic` commands);
//! - [`bench`]: benchmarks (`eddy bench`), never part of the tests.

pub mod bench;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod engine;
pub mod error;
pub mod format;
pub mod fuzz;
pub mod log;
pub mod server;
pub mod session;
pub mod sql;
