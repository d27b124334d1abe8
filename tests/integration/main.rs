//! Eddy's integration tests: one binary (every test binary re-links DataFusion), one module
//! per area.

mod cli;
mod conformance;
mod connect;
mod functions;
mod fuzz;
mod join_aggregates;
mod joins;
mod kafka;
mod log;
mod over;
mod persistent;
mod processing_log;
mod push;
mod recovery;
mod registry;
mod repartition;
mod server;
mod session;
mod state;
mod support;
mod windows;
