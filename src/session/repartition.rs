//! A join's sides repartitioned through internal topics (see [`crate::engine::repartition`]):
//! which sides, and the queries that write their topics.
//!
//! As ksqlDB decides it: a stream joined on anything but its key is repartitioned by its join
//! expression (the first source by the first join's left side, each joined source by its
//! join's right side). Tables are joined on their keys (or by foreign key, which reads the
//! table as it is), so they are only when keyed in another format than the join's key (as a
//! stream joined on its key is). The rows of a join feeding the next join of an n-way join
//! are re-keyed in memory by the next join: ksqlDB would repartition those too. So are
//! windowed sources keyed in another format (their windows are in their keys).
//!
//! Queries created before repartition topics existed keep re-keying in memory (their
//! checkpoints name the positions of the sources they read): the choice is a property of the
//! query, [`crate::config::JOIN_REPARTITION`], set when it is created.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::sql::sqlparser::ast::Expr;

use super::*;
use crate::catalog::{QueryInfo, Source};
use crate::engine::checkpoint::CheckpointStore;
use crate::engine::join::{JoinPlan, JoinShape};
use crate::engine::query::{Checkpointing, QuerySpec, RunningQuery};
use crate::engine::repartition::{Rekey, internal_source, key_format, topic_name};
use crate::planner::persistent::PlannedQuery;

/// A side of a join to repartition.
pub(super) struct Repartition {
    /// Which input of the query it is: 0, the first source; 1, 2, … the joined ones.
    pub input: usize,
    /// Where in the join, as ksqlDB names it: `Join-left`, `L_Join-right`, or `Join` for a
    /// stream-table join's stream.
    pub context: String,
    /// The join expression, on the source's rows (see [`Rekey`]), and as written.
    key: Arc<dyn PhysicalExpr>,
    key_schema: SchemaRef,
    pub written: String,
    /// The source it repartitions.
    pub source: Arc<Source>,
    /// The sources whose (largest) partition count its topic takes: the side it is joined
    /// with (the first source, for the rows of earlier joins), or both sides when both are
    /// repartitioned.
    partitions_of: Vec<Arc<Source>>,
    /// The join's key format, which the topic's keys are written in.
    format: crate::format::FormatRef,
}

impl Repartition {
    /// The internal topic's name, for query `query_id`.
    pub fn topic(&self, query_id: &str) -> String {
        topic_name(query_id, &self.context)
    }

    /// The query that writes the topic: its id.
    pub fn query_id(&self, query_id: &str) -> String {
        format!("{query_id}-{}-repartition", self.context)
    }

    /// The internal topic as a source.
    pub fn internal(&self, query_id: &str) -> Result<Source, SessionError> {
        let key_type = self.key.data_type(&self.key_schema).map_err(|e| refusal(e.to_string()))?;
        let topic = self.topic(query_id);
        internal_source(&self.source, &topic, &key_type, Arc::clone(&self.format)).map_err(|e| refusal(e.0))
    }
}

/// The sides of `plan`'s join (over `sources`) to repartition, in input order.
pub(super) fn repartitions(plan: &JoinPlan, sources: &[Arc<Source>]) -> Vec<Repartition> {
    let steps = plan.steps.len();
    // ksqlDB names the last join `Join`, the one before (its left side) `L_Join`, and so on.
    let nested = |step: usize| "L_".repeat(steps - 1 - step);
    // Windowed sources are joined on their keys only (checked when planned); one keyed in
    // another format is re-keyed in memory, its window kept.
    let stream = |i: usize| sources.get(i).is_some_and(|s| s.kind == SourceKind::Stream);
    let windowed = |i: usize| sources.get(i).is_some_and(|s| s.window().is_some());
    let mut found = Vec::new();
    for (step, join) in plan.steps.iter().enumerate() {
        let input = join.right_input;
        let (Some(left), Some(right)) = (sources.first(), sources.get(input)) else { continue };
        let keys: Vec<&str> =
            right.columns.iter().filter(|c| c.role == ColumnRole::Key).map(|c| c.name.as_str()).collect();
        let on = &plan.on[step][1];
        let right_keyed = matches!(on, Expr::CompoundIdentifier(parts)
            if parts.last().is_some_and(|c| keys == [c.value.as_str()]));
        // Rows of earlier joins are re-keyed in memory (see the module's comment).
        let left_keyed = step > 0 || join.left_keyed || join.shape == JoinShape::ForeignKey;
        // The join's key format: that of a side joined on its key, the left's first (a side
        // written again is written in it).
        let format = match (left_keyed, right_keyed) {
            (true, _) if !left.key_format.is(crate::format::NONE) => Arc::clone(&left.key_format),
            (false, true) => Arc::clone(&right.key_format),
            _ => key_format(left, right),
        };
        // Keys in a schema registry's format carry their schema's id, which may differ
        // between the sides even where the keys are equal: when both sides' keys are in one,
        // ksqlDB writes both again, in the join's key format (its first step's left side, and
        // every right side).
        let registry_keys = [left, right].iter().all(|s| crate::format::uses_registry(s.key_format.name()));
        let left_rewritten = !left_keyed || (registry_keys && step == 0 && join.shape != JoinShape::ForeignKey);
        let left_context = match (left_rewritten && !windowed(0), stream(0)) {
            (false, _) => None,
            (true, true) => {
                let side = if join.shape == JoinShape::StreamTable { "" } else { "-left" };
                Some(format!("{}Join{side}", nested(0)))
            }
            // A table keyed in a registry's format, written again as the right side is.
            (true, false) if join.shape != JoinShape::ForeignKey => {
                Some(format!("{}LeftSourceKeyed-SelectKey", nested(0)))
            }
            (true, false) => None,
        };
        // A side joined on its key with the other, but serialised otherwise than the join's
        // key, is written again in the join's key format (so that equal keys land in equal
        // partitions).
        let misformatted = left_keyed
            && right_keyed
            && (right.key_format.name() != format.name() || registry_keys)
            && !windowed(input);
        let right_context = match (stream(input), right_keyed) {
            (true, false) => Some(format!("{}Join-right", nested(step))),
            (true, true) if misformatted => Some(format!("{}Join-right", nested(step))),
            (false, true) if misformatted && join.shape != JoinShape::ForeignKey => {
                Some(format!("{}RightSourceKeyed-SelectKey", nested(step)))
            }
            _ => None,
        };
        // Each topic is partitioned as the side it is joined with; when both sides are
        // written again, both as the larger.
        let both = left_context.is_some() && right_context.is_some();
        let partitions_of = |other: &Arc<Source>| {
            if both { vec![Arc::clone(left), Arc::clone(right)] } else { vec![Arc::clone(other)] }
        };
        if let Some(context) = left_context {
            found.push(Repartition {
                input: 0,
                context,
                key: Arc::clone(&join.keys[0]),
                key_schema: Arc::clone(&join.sides[0]),
                written: plan.on[0][0].to_string(),
                source: Arc::clone(left),
                partitions_of: partitions_of(right),
                format: Arc::clone(&format),
            });
        }
        if let Some(context) = right_context {
            found.push(Repartition {
                input,
                context,
                key: Arc::clone(&join.keys[1]),
                key_schema: Arc::clone(&join.sides[1]),
                written: on.to_string(),
                source: Arc::clone(right),
                partitions_of: partitions_of(left),
                format,
            });
        }
    }
    found
}

/// A repartitioning query checkpoints at least this often: what it writes is read by the
/// join only once checkpointed, so its checkpoints (cheap: it keeps no state) pace the join.
const FEEDER_BARRIER_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// What the queries writing repartition topics share with the join's query.
pub(super) struct FeederSettings {
    pub from_earliest: bool,
    pub linger: std::time::Duration,
    pub barrier_interval: std::time::Duration,
}

impl Session {
    /// The sides of query `info`'s join to repartition through topics (none when it re-keys
    /// in memory, or is no join).
    pub(super) fn repartitions_of(&self, info: &QueryInfo, planned: &PlannedQuery) -> Vec<Repartition> {
        // Kept with every query since repartition topics exist; absent, it re-keys in memory.
        let through_topics = info
            .properties
            .get(crate::config::JOIN_REPARTITION)
            .is_some_and(|v| v.eq_ignore_ascii_case(crate::config::Repartition::Topic.name()));
        match planned.join_plan() {
            Some(plan) if through_topics => repartitions(plan, &planned.sources()),
            _ => Vec::new(),
        }
    }

    /// Starts the query that writes `repartition`'s topic for query `info` (creating the
    /// topic, as many partitions as the side it is joined with, and cutting it back to the
    /// query's checkpoint), and says what the join reads instead of the side.
    pub(super) async fn start_feeder(
        &self,
        info: &QueryInfo,
        repartition: &Repartition,
        settings: &FeederSettings,
    ) -> Result<(RunningQuery, Arc<Source>), SessionError> {
        let id = repartition.query_id(&info.id);
        let internal = Arc::new(repartition.internal(&info.id)?);
        let topic = &internal.topic;
        let partitions = self.log.partition_count(&repartition.source.topic).await?;
        let claim = self
            .assign(&id, partitions)
            .await?
            .ok_or_else(|| refusal(format!("another process runs {id}, which query {} needs", info.id)))?;
        if let Err(crate::log::LogError::UnknownTopic(_)) = self.log.partition_count(topic).await {
            let mut partitions = 1;
            for side in &repartition.partitions_of {
                partitions = partitions.max(self.log.partition_count(&side.topic).await?);
            }
            self.log.create_topic(topic, &crate::log::TopicSpec::new(partitions)).await?;
        }
        // Claimed: what it wrote after its checkpoint is cut off (it writes it again).
        let checkpoints = {
            let store = CheckpointStore::for_log(&self.log, &id);
            let exactly_once = self.log.can_truncate();
            let latest = crate::engine::query::cut_back(self.log.as_ref(), &store, topic, exactly_once).await?;
            Some(Checkpointing { store, exactly_once, latest })
        };
        let rekey = Rekey::try_new(
            Arc::clone(&repartition.key),
            Arc::clone(&repartition.key_schema),
            repartition.source.kind == SourceKind::Table,
            format!("Repartition by {}", repartition.written),
        )
        .map_err(SessionError::from)?;
        let spec = QuerySpec {
            id,
            input: Arc::clone(&repartition.source),
            joined: Vec::new(),
            operators: vec![Box::new(rekey)],
            sink: crate::engine::query::Sink::Topic(Arc::clone(&internal)),
            from_earliest: settings.from_earliest,
            linger: settings.linger,
            rebuild_state: false,
            keeps_key: false,
            // Its input's partitions in event-time order, so that its topic is written in
            // that order: the join reads it in order as it would have read the input.
            in_time_order: true,
            checkpoints,
            fences: Arc::clone(&self.fences),
            barrier_interval: settings.barrier_interval.min(FEEDER_BARRIER_INTERVAL),
            state_limit: None,
            feeders: Vec::new(),
            every_update: false,
        };
        let running = RunningQuery::start(Arc::clone(&self.log), spec, claim).await?;
        Ok((running, internal))
    }

    /// Cleans up after the queries that fed a terminated query: their fences, checkpoints and
    /// topics.
    pub(super) async fn remove_feeders(&self, feeders: &[(String, String)]) {
        for (id, topic) in feeders {
            self.forget_query(id).await;
            if let Err(e) = self.log.delete_topic(topic).await {
                tracing::warn!(topic, error = %e, "cannot delete a repartition topic");
            }
        }
    }
}
