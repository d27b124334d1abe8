//! Planning: a query's SQL, resolved against the catalog's sources, becomes the plans the
//! engine's operators run.
//!
//! - [`query`]: a query over one source, through DataFusion's SQL planner against an empty
//!   table of the source's row schema: filter and projection ([`crate::engine::plan::StatelessPlan`]),
//!   aggregations (windowed or not) and `OVER` windows; ksqlDB's checks of GROUP BY and of
//!   window bounds, and its names for output columns.
//! - [`join`]: joins, planned by DataFusion (its `Join` node gives the equi-join keys), into
//!   a [`crate::engine::join::JoinPlan`]; [`join_aggregate`] cuts a join that aggregates in
//!   two, the join and the aggregation over its rows.
//! - [`rewrite`]: ksqlDB's expressions in DataFusion's terms, applied to the AST before
//!   DataFusion plans it; [`table_functions`]: the table functions taken out of a projection.
//! - [`keys`]: which output columns are a query's key, by ksqlDB's rules.
//! - [`persistent`] and [`push`]: whole queries (persistent, push), lowered to the engine's
//!   operators, through [`Planner`] (the catalog's sources and the log's partition counts).
//!
//! The planner uses the engine's types (plans, [`crate::engine::plan::PlanError`]); the engine
//! never calls the planner.

pub mod join;
pub mod join_aggregate;
pub mod keys;
pub mod persistent;
pub mod push;
pub mod query;
pub mod rewrite;
pub mod table_functions;

use crate::catalog::Catalog;
use crate::log::Log;

/// What planning reads: the catalog's sources, and the log (for partition counts).
#[derive(Clone, Copy)]
pub struct Planner<'a> {
    pub catalog: &'a Catalog,
    pub log: &'a dyn Log,
}
