//! Running queries over topics: the first slice of the engine.
//!
//! Today: transient push queries without state (`SELECT … FROM stream [WHERE …] EMIT
//! CHANGES [LIMIT n]`). A query reads its source's partitions ([`source`]), decodes each fetch
//! into one Arrow batch of the source's row schema (the columns plus `ROWTIME`,
//! `ROWPARTITION`, `ROWOFFSET`), and applies a [`plan::StatelessPlan`] (DataFusion's planner,
//! then physical expressions evaluated per batch). Persistent queries, state, windows and
//! joins come with the rest of issues 3–5; they will plug in as operators between the same
//! source and a sink.

pub mod aggregate;
pub mod align;
pub mod checkpoint;
pub mod functions;
pub mod join;
pub mod join_aggregate;
pub mod offsets;
pub mod operator;
pub mod over;
pub mod plan;
pub mod processing_log;
pub mod query;
pub mod repartition;
pub mod rewrite;
pub mod sink;
pub mod source;
pub mod store;
pub mod table_functions;
pub mod time_format;
pub mod udf;
pub mod window;
pub mod window_aggregate;
