//! Eddy: a streaming SQL engine in the spirit of ksqlDB.
//!
//! # Layout
//! Modules in data-flow order (storage first; the SQL front end, planner and operators come
//! with later issues and sit above `log`):
//! - [`log`]: topics — the [`log::Log`] trait, the embedded log, Kafka's partitioner, a
//!   producer;
//! - [`cli`]: the `eddy` command line (argument parsing and the `topic` commands);
//! - [`bench`]: benchmarks (`eddy bench`), never part of the tests.

pub mod bench;
pub mod cli;
pub mod log;
pub mod sql;
