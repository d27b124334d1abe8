//! Running queries over topics.
//!
//! A query ([`query::RunningQuery`]) is a source task, an operator task and a sink task joined
//! by bounded channels. The source reads its inputs' partitions ([`source`]; a join's, or a
//! time-ordered query's, in event-time order: [`align`]) and decodes each fetch into Arrow
//! batches of the input's row schema (its columns plus `ROWTIME`, `ROWPARTITION`,
//! `ROWOFFSET`). The operators ([`operator`]) filter and project ([`plan`], DataFusion's
//! physical expressions), aggregate ([`groups_aggregate`], [`window_aggregate`], [`aggregate`]), compute `OVER`
//! frames ([`over`]) and join ([`join`]); the sink encodes and appends ([`sink`]). Barriers
//! flow with the data and take checkpoints ([`checkpoint`]). A join side keyed otherwise than
//! its join goes first through a repartition topic, written by a query of its own
//! ([`repartition`]).
//!
//! The engine runs plans; [`crate::planner`] makes them from SQL.

pub mod aggregate;
pub mod align;
pub mod checkpoint;
pub mod functions;
pub mod groups_aggregate;
pub mod join;
pub mod join_aggregate;
pub mod offsets;
pub mod operator;
pub mod over;
pub mod plan;
pub mod processing_log;
pub mod query;
pub mod repartition;
pub mod sink;
pub mod source;
pub mod store;
pub mod table_functions;
pub mod time_format;
pub mod udf;
pub mod window;
pub mod window_aggregate;
