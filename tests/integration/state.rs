//! Aggregation state: a snapshot taken mid-stream and restored into a fresh operator gives
//! the same results as an uninterrupted run; state is counted in bytes; an unwindowed
//! aggregation's state can be bounded by a time-to-live.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use eddy::engine::aggregate::{Aggregate, AggregatePlan};
use eddy::engine::groups_aggregate::GroupsAggregate;
use eddy::engine::operator::{Operator, TimedBatch};
use eddy::engine::window_aggregate::FinalWindows;
use eddy::planner::query::{QueryPlan, plan_query};
use eddy::sql::ast::Statement;

fn source(sql: &str) -> &'static str {
    if sql.contains("pv_table") { "PV_TABLE" } else { "PV" }
}

fn row_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("USER_ID", DataType::Utf8, true),
        Field::new("MS", DataType::Int64, true),
        Field::new("ROWTIME", DataType::Int64, false),
        Field::new("ROWPARTITION", DataType::Int32, false),
        Field::new("ROWOFFSET", DataType::Int64, false),
    ]))
}

async fn plan(sql: &str) -> Arc<AggregatePlan> {
    let Statement::Select(query) = eddy::sql::parse_one(sql).unwrap() else { panic!("not a query") };
    let star = ["USER_ID".to_string(), "MS".to_string()];
    let QueryPlan::Aggregate { mut plan, .. } = plan_query(&query, source(sql), row_schema(), &star).await.unwrap()
    else {
        panic!("not an aggregation")
    };
    // `FROM pv_table`: the rows are a table's, keyed by USER_ID (each replaces the last).
    if sql.contains("pv_table") {
        plan.table_keys = Some(vec![0]);
    }
    Arc::new(plan)
}

async fn aggregate(sql: &str) -> Aggregate {
    Aggregate::try_new(plan(sql).await, "test".into()).unwrap()
}

/// One record per batch (as ksqlDB's tests feed them): (user, ms, time).
fn batches(rows: &[(&str, i64, i64)]) -> Vec<TimedBatch> {
    rows.iter()
        .enumerate()
        .map(|(offset, (user, ms, time))| {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(vec![*user])),
                Arc::new(Int64Array::from(vec![*ms])),
                Arc::new(Int64Array::from(vec![*time])),
                Arc::new(Int32Array::from(vec![0])),
                Arc::new(Int64Array::from(vec![offset as i64])),
            ];
            timed(RecordBatch::try_new(row_schema(), columns).unwrap())
        })
        .collect()
}

/// Every output row as text (spaces collapsed) with its timestamp, tombstones as `<deleted>`.
fn run(operator: &mut dyn Operator, input: Vec<TimedBatch>) -> Vec<String> {
    let mut lines = Vec::new();
    for batch in input {
        let mut out = Vec::new();
        operator.process(batch, &mut out).unwrap();
        for batch in out {
            let formatted =
                datafusion::arrow::util::pretty::pretty_format_batches(std::slice::from_ref(&batch.rows)).unwrap();
            // Columns' widths depend on the batch's other rows: spaces are collapsed.
            let text = formatted.to_string();
            let rows = text.lines().skip(3).filter(|l| !l.starts_with('+'));
            for (i, line) in rows.map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).enumerate() {
                let deleted = batch.tombstones.as_ref().is_some_and(|t| t.value(i));
                let stamp = batch.timestamps_ms.as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(i);
                lines.push(if deleted { format!("{line} @{stamp} <deleted>") } else { format!("{line} @{stamp}") });
            }
        }
    }
    lines
}

const INPUT: [(&str, i64, i64); 8] = [
    ("alice", 100, 1_000),
    ("bob", 200, 2_000),
    ("alice", 300, 3_000),
    ("carol", 50, 62_000),
    ("alice", 10, 64_000),
    ("bob", 20, 65_000),
    ("alice", 30, 200_000),
    ("carol", 40, 201_000),
];

#[tokio::test]
async fn a_restored_snapshot_continues_as_if_nothing_happened() {
    for sql in [
        "SELECT user_id, COUNT(*) AS n, SUM(ms) AS total, AVG(ms) AS mean, MAX(ms) AS top, COLLECT_LIST(ms) AS all_ms, \
         TOPK(ms, 2) AS top2, LATEST_BY_OFFSET(ms) AS last FROM pv GROUP BY user_id EMIT CHANGES;",
        "SELECT user_id, COUNT(*) AS n, SUM(ms) AS total FROM pv WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 0 SECONDS) \
         GROUP BY user_id EMIT FINAL;",
        "SELECT user_id, COUNT(*) AS n, HISTOGRAM(CAST(ms AS STRING)) AS h FROM pv WINDOW SESSION (30 SECONDS) \
         GROUP BY user_id EMIT CHANGES;",
        // A table's rows change groups: each change retracts the row's last version.
        "SELECT ms % 20 AS bucket, COUNT(*) AS n, SUM(ms) AS total, AVG(ms) AS mean FROM pv_table \
         GROUP BY ms % 20 EMIT CHANGES;",
    ] {
        let mut straight = aggregate(sql).await;
        let expected = run(&mut straight, batches(&INPUT));
        for cut in [0, 3, 5] {
            let (before, after) = INPUT.split_at(cut);
            let mut first = aggregate(sql).await;
            let mut got = run(&mut first, batches(before));
            let snapshot = first.snapshot().unwrap();
            assert_eq!(snapshot.groups.num_rows() > 0, cut > 0, "{sql}");
            let mut second = aggregate(sql).await;
            second.restore(&snapshot).unwrap();
            assert_eq!(second.state_bytes() > 0, cut > 0, "{sql}");
            let offset_batches: Vec<TimedBatch> = batches(after);
            got.extend(run(&mut second, offset_batches));
            assert_eq!(got, expected, "{sql}, restored after {cut} records");
        }
    }
}

/// All the rows of `input` as one batch.
fn one_batch(input: Vec<TimedBatch>) -> Vec<TimedBatch> {
    let rows: Vec<RecordBatch> = input.iter().map(|b| b.rows.clone()).collect();
    vec![timed(datafusion::arrow::compute::concat_batches(&row_schema(), &rows).unwrap())]
}

/// Rows of a stream, stamped with their ROWTIME.
fn timed(rows: RecordBatch) -> TimedBatch {
    TimedBatch { timestamps_ms: rows.column(2).clone(), rows, tombstones: None, windows: None, replay: false, input: 0 }
}

/// Tumbling and hopping windows with EMIT FINAL run batch at a time on groups accumulators:
/// the same results as group by group, a record at a time or all at once, and snapshots
/// either operator can resume from.
#[tokio::test]
async fn final_windows_batch_at_a_time_match_group_by_group() {
    for sql in [
        "SELECT user_id, COUNT(*) AS n, SUM(ms) AS total, AVG(ms) AS mean, MIN(ms) AS least FROM pv \
         WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 0 SECONDS) GROUP BY user_id EMIT FINAL;",
        "SELECT user_id, COUNT(*) AS n, MAX(ms) AS top FROM pv \
         WINDOW HOPPING (SIZE 2 MINUTES, ADVANCE BY 30 SECONDS, GRACE PERIOD 10 SECONDS) GROUP BY user_id EMIT FINAL;",
        "SELECT COUNT(*) AS n FROM pv WINDOW TUMBLING (SIZE 1 MINUTE) WHERE ms > 15 GROUP BY 1 HAVING COUNT(*) > 1 EMIT FINAL;",
        "SELECT user_id, LATEST_BY_OFFSET(ms) AS last, EARLIEST_BY_OFFSET(ms) AS first FROM pv \
         WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 0 SECONDS) GROUP BY user_id EMIT FINAL;",
        "SELECT ms % 2 AS bucket, user_id, COUNT(*) AS n FROM pv WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 0 SECONDS) \
         GROUP BY ms % 2, user_id HAVING COUNT(*) > 1 EMIT FINAL;",
    ] {
        let plan = plan(sql).await;
        assert!(FinalWindows::runs(&plan), "{sql}");
        let expected = run(&mut aggregate(sql).await, batches(&INPUT));
        assert!(!expected.is_empty(), "{sql}");
        let fresh = || FinalWindows::try_new(Arc::clone(&plan), "test".into()).unwrap();
        assert_eq!(run(&mut fresh(), batches(&INPUT)), expected, "{sql}, a record at a time");
        assert_eq!(run(&mut fresh(), one_batch(batches(&INPUT))), expected, "{sql}, in one batch");
        for cut in [1, 3, 5] {
            let (before, after) = INPUT.split_at(cut);
            // Snapshots from either operator, restored into either.
            for (from_final, into_final) in [(true, true), (true, false), (false, true)] {
                let mut first: Box<dyn Operator> =
                    if from_final { Box::new(fresh()) } else { Box::new(aggregate(sql).await) };
                let mut got = run(first.as_mut(), batches(before));
                let snapshot = first.snapshot().unwrap().unwrap();
                // Taking a snapshot leaves the state as it was.
                let mut second: Box<dyn Operator> =
                    if into_final { Box::new(fresh()) } else { Box::new(aggregate(sql).await) };
                second.restore(snapshot.clone()).unwrap();
                got.extend(run(second.as_mut(), batches(after)));
                assert_eq!(got, expected, "{sql}, restored after {cut} records ({from_final} → {into_final})");
                let mut rest = run(first.as_mut(), batches(after));
                rest.splice(0..0, run(&mut aggregate(sql).await, batches(before)));
                assert_eq!(rest, expected, "{sql}, going on after a snapshot at {cut}");
            }
        }
    }
}

/// `input` in batches of `size` records.
fn in_batches(input: &[(&str, i64, i64)], size: usize) -> Vec<TimedBatch> {
    input.chunks(size).flat_map(|chunk| one_batch(batches(chunk))).collect()
}

/// Streams' aggregations emitting changes, unwindowed or in tumbling and hopping windows, run
/// batch at a time on groups accumulators: the same changes as group by group, however the
/// records are batched, with HAVING's tombstones, and snapshots either operator resumes from.
#[tokio::test]
async fn changes_batch_at_a_time_match_group_by_group() {
    for sql in [
        "SELECT user_id, COUNT(*) AS n, SUM(ms) AS total, AVG(ms) AS mean, MIN(ms) AS least, MAX(ms) AS top FROM pv \
         GROUP BY user_id EMIT CHANGES;",
        "SELECT COUNT(*) AS n, SUM(ms) AS total FROM pv WHERE ms > 15 GROUP BY 1 EMIT CHANGES;",
        "SELECT user_id, LATEST_BY_OFFSET(ms) AS last, EARLIEST_BY_OFFSET(ms) AS first, COUNT(*) AS n FROM pv \
         GROUP BY user_id EMIT CHANGES;",
        "SELECT ms % 3 AS bucket, COUNT(*) AS n FROM pv GROUP BY ms % 3 HAVING SUM(ms) < 260 EMIT CHANGES;",
        "SELECT user_id, COUNT(*) AS n, SUM(ms) AS total FROM pv \
         WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 0 SECONDS) GROUP BY user_id EMIT CHANGES;",
        "SELECT user_id, COUNT(*) AS n, MAX(ms) AS top FROM pv \
         WINDOW HOPPING (SIZE 2 MINUTES, ADVANCE BY 30 SECONDS, GRACE PERIOD 10 SECONDS) GROUP BY user_id \
         HAVING COUNT(*) < 3 EMIT CHANGES;",
    ] {
        let plan = plan(sql).await;
        assert!(GroupsAggregate::runs(&plan), "{sql}");
        let fresh = || GroupsAggregate::try_new(Arc::clone(&plan), "test".into()).unwrap();
        for size in [1, 3, INPUT.len()] {
            let expected = run(&mut aggregate(sql).await, in_batches(&INPUT, size));
            assert!(!expected.is_empty(), "{sql}");
            assert_eq!(run(&mut fresh(), in_batches(&INPUT, size)), expected, "{sql}, in batches of {size}");
        }
        let expected = run(&mut aggregate(sql).await, batches(&INPUT));
        if sql.contains("HAVING") {
            assert!(expected.iter().any(|line| line.ends_with("<deleted>")), "{sql}: {expected:?}");
        }
        for cut in [1, 3, 5] {
            let (before, after) = INPUT.split_at(cut);
            // Snapshots from either operator, restored into either.
            for (from_groups, into_groups) in [(true, true), (true, false), (false, true)] {
                let mut first: Box<dyn Operator> =
                    if from_groups { Box::new(fresh()) } else { Box::new(aggregate(sql).await) };
                let mut got = run(first.as_mut(), batches(before));
                let snapshot = first.snapshot().unwrap().unwrap();
                let mut second: Box<dyn Operator> =
                    if into_groups { Box::new(fresh()) } else { Box::new(aggregate(sql).await) };
                second.restore(snapshot).unwrap();
                got.extend(run(second.as_mut(), batches(after)));
                assert_eq!(got, expected, "{sql}, restored after {cut} records ({from_groups} → {into_groups})");
                // Taking a snapshot leaves the state as it was.
                let mut rest = run(first.as_mut(), batches(after));
                rest.splice(0..0, run(&mut aggregate(sql).await, batches(before)));
                assert_eq!(rest, expected, "{sql}, going on after a snapshot at {cut}");
            }
        }
    }
}

/// `input` as a table's changes in batches of `size`: the rows at `deleted` are deletions of
/// their key.
fn table_batches(input: &[(&str, i64, i64)], size: usize, deleted: &[usize]) -> Vec<TimedBatch> {
    let mut at = 0;
    in_batches(input, size)
        .into_iter()
        .map(|mut batch| {
            let rows = batch.rows.num_rows();
            let marks: Vec<bool> = (at..at + rows).map(|i| deleted.contains(&i)).collect();
            at += rows;
            batch.tombstones = marks.iter().any(|d| *d).then(|| marks.into());
            batch
        })
        .collect()
}

/// A table's aggregation of functions whose rows can be taken out by negation runs batch at
/// a time on groups accumulators: every change as group by group gives it (each change's
/// groups, the retraction's first), however the changes are batched, with deletions, WHERE
/// and HAVING, and snapshots either operator resumes from.
#[tokio::test]
async fn a_tables_changes_batch_at_a_time_match_group_by_group() {
    // Alice moves between buckets, bob is deleted and comes back, carol repeats.
    let input: [(&str, i64, i64); 10] = [
        ("alice", 100, 1_000),
        ("bob", 200, 2_000),
        ("alice", 300, 3_000),
        ("carol", 50, 4_000),
        ("bob", 0, 5_000),
        ("alice", 10, 6_000),
        ("bob", 20, 7_000),
        ("carol", 50, 8_000),
        ("alice", 30, 9_000),
        ("carol", 41, 10_000),
    ];
    let deleted = [4];
    for sql in [
        "SELECT ms % 20 AS bucket, COUNT(*) AS n, SUM(ms) AS total, AVG(ms) AS mean FROM pv_table \
         GROUP BY ms % 20 EMIT CHANGES;",
        "SELECT ms % 3 AS bucket, COUNT(ms) AS n FROM pv_table WHERE ms > 15 GROUP BY ms % 3 EMIT CHANGES;",
        "SELECT ms % 20 AS bucket, SUM(ms) AS total FROM pv_table GROUP BY ms % 20 HAVING SUM(ms) > 60 EMIT CHANGES;",
    ] {
        let plan = plan(sql).await;
        assert!(GroupsAggregate::runs(&plan), "{sql}");
        let fresh = || GroupsAggregate::try_new(Arc::clone(&plan), "test".into()).unwrap();
        let expected = run(&mut aggregate(sql).await, table_batches(&input, 1, &deleted));
        if sql.contains("HAVING") {
            assert!(expected.iter().any(|line| line.ends_with("<deleted>")), "{sql}: {expected:?}");
        } else {
            assert!(expected.len() > input.len(), "{sql}: a move updates two groups: {expected:?}");
        }
        for size in [1, 3, input.len()] {
            let got = run(&mut fresh(), table_batches(&input, size, &deleted));
            assert_eq!(got, expected, "{sql}, in batches of {size}");
        }
        for cut in [2, 5, 7] {
            let batches = table_batches(&input, 1, &deleted);
            let (before, after) = batches.split_at(cut);
            for (from_groups, into_groups) in [(true, true), (true, false), (false, true)] {
                let mut first: Box<dyn Operator> =
                    if from_groups { Box::new(fresh()) } else { Box::new(aggregate(sql).await) };
                let mut got = run(first.as_mut(), before.to_vec());
                let snapshot = first.snapshot().unwrap().unwrap();
                assert_eq!(snapshot.len(), 2, "{sql}: groups and the table's rows");
                let mut second: Box<dyn Operator> =
                    if into_groups { Box::new(fresh()) } else { Box::new(aggregate(sql).await) };
                second.restore(snapshot).unwrap();
                got.extend(run(second.as_mut(), after.to_vec()));
                assert_eq!(got, expected, "{sql}, restored after {cut} changes ({from_groups} → {into_groups})");
            }
        }
    }
    // Functions that cannot be taken out by negation stay group by group.
    let sql = "SELECT ms % 20 AS bucket, COLLECT_LIST(ms) AS all_ms FROM pv_table GROUP BY ms % 20 EMIT CHANGES;";
    assert!(!GroupsAggregate::runs(plan(sql).await.as_ref()));
}

/// Many groups, few touched per batch: the superseded rows of the groups' state are gathered
/// away, and the state's size follows the groups, not the batches.
#[tokio::test]
async fn changes_state_stays_proportional_to_the_groups() {
    let sql = "SELECT user_id, COUNT(*) AS n, SUM(ms) AS total FROM pv GROUP BY user_id EMIT CHANGES;";
    let users: Vec<String> = (0..50).map(|u| format!("u{u}")).collect();
    let input: Vec<(&str, i64, i64)> = (0..2_000).map(|i| (users[i % 50].as_str(), i as i64, i as i64)).collect();
    let mut groups = GroupsAggregate::try_new(plan(sql).await, "test".into()).unwrap();
    let mut first = 0;
    for (i, batch) in in_batches(&input, 7).into_iter().enumerate() {
        run(&mut groups, vec![batch]);
        if i == 20 {
            first = groups.state_bytes();
        }
    }
    assert!(groups.state_bytes() < 3 * first, "{} then {}", first, groups.state_bytes());
    let expected = run(&mut aggregate(sql).await, in_batches(&input, 7));
    let got = run(&mut GroupsAggregate::try_new(plan(sql).await, "test".into()).unwrap(), in_batches(&input, 7));
    assert_eq!(got, expected);
    assert!(got.last().unwrap().contains("| 40 "), "{:?}", got.last());
}

#[tokio::test]
async fn state_is_counted_and_a_time_to_live_bounds_it() {
    let sql = "SELECT user_id, COUNT(*) AS n FROM pv GROUP BY user_id EMIT CHANGES;";
    let groups_of = |operator: &mut dyn Operator| operator.snapshot().unwrap().unwrap().remove(0);
    for batched in [false, true] {
        let operator = |ttl: Option<i64>| async move {
            let plan = plan(sql).await;
            if batched {
                Box::new(GroupsAggregate::try_new(plan, "test".into()).unwrap().with_state_ttl(ttl))
                    as Box<dyn Operator>
            } else {
                Box::new(Aggregate::try_new(plan, "test".into()).unwrap().with_state_ttl(ttl))
            }
        };
        let mut unbounded = operator(None).await;
        run(unbounded.as_mut(), batches(&INPUT));
        assert_eq!(groups_of(unbounded.as_mut()).num_rows(), 3);
        assert!(unbounded.state_bytes() > 0);
        // A one-minute TTL: at 201 s only alice (200 s) and carol (201 s) were updated recently.
        let mut bounded = operator(Some(60_000)).await;
        let out = run(bounded.as_mut(), batches(&INPUT));
        let snapshot = groups_of(bounded.as_mut());
        let users: Vec<&str> = snapshot.column(0).as_string::<i32>().iter().flatten().collect();
        assert_eq!(users, ["alice", "carol"], "batched: {batched}");
        assert!(bounded.state_bytes() < unbounded.state_bytes(), "batched: {batched}");
        // Alice was forgotten after 64 s (nothing until 200 s): her count starts again.
        assert!(out.last().unwrap().contains("carol") && out[out.len() - 2].contains("| alice | 1 |"), "{out:?}");
    }
}

async fn over(sql: &str) -> eddy::engine::over::Over {
    let Statement::Select(query) = eddy::sql::parse_one(sql).unwrap() else { panic!("not a query") };
    let star = ["USER_ID".to_string(), "MS".to_string()];
    let QueryPlan::Over { plan, .. } = plan_query(&query, "PV", row_schema(), &star).await.unwrap() else {
        panic!("not an OVER query")
    };
    eddy::engine::over::Over::try_new(Arc::new(plan), "test".into()).unwrap()
}

fn run_over(operator: &mut eddy::engine::over::Over, input: Vec<TimedBatch>) -> Vec<String> {
    let mut lines = Vec::new();
    for batch in input {
        let mut out = Vec::new();
        operator.process(batch, &mut out).unwrap();
        for batch in out {
            let formatted = datafusion::arrow::util::pretty::pretty_format_batches(std::slice::from_ref(&batch.rows));
            lines.extend(
                formatted.unwrap().to_string().lines().skip(3).filter(|l| !l.starts_with('+')).map(String::from),
            );
        }
    }
    lines
}

#[tokio::test]
async fn over_windows_restore_their_frames() {
    let sql = "SELECT user_id, ms,
         AVG(ms) OVER (PARTITION BY user_id ORDER BY ROWTIME ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS avg2,
         MAX(ms) OVER (PARTITION BY user_id ORDER BY ROWTIME RANGE BETWEEN INTERVAL '1' MINUTE PRECEDING AND CURRENT ROW) AS max1m,
         SUM(ms) OVER (ORDER BY ROWTIME ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
       FROM pv EMIT CHANGES;";
    let mut straight = over(sql).await;
    let expected = run_over(&mut straight, batches(&INPUT));
    assert_eq!(expected.len(), INPUT.len());
    for cut in [1, 3, 6] {
        let (before, after) = INPUT.split_at(cut);
        let mut first = over(sql).await;
        let mut got = run_over(&mut first, batches(before));
        let snapshot = first.snapshot().unwrap();
        let mut second = over(sql).await;
        second.restore(&snapshot).unwrap();
        got.extend(run_over(&mut second, batches(after)));
        assert_eq!(got, expected, "restored after {cut} records");
    }
}
