//! `eddy bench query`: how fast a persistent query (`CREATE STREAM … AS SELECT` with a filter
//! and a projection, over JSON page views) turns input records into output records, end to
//! end on the embedded log; beside the decoding of the same records alone (its floor).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clap::Args;

use crate::cli::{CliError, print_line};
use crate::engine::source::{decode, row_schema};
use crate::log::{EmbeddedLog, Log, NewRecord, TopicSpec};
use crate::session::{Session, StatementResult};

#[derive(Debug, Args)]
pub struct QueryBenchArgs {
    /// Input records.
    #[arg(long, default_value_t = 2_000_000)]
    records: u64,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// The query: `filter` (filter and projection, a stream), `aggregate` (GROUP BY page,
    /// a table), `window` (the same per one-minute tumbling window), `join` (each view
    /// enriched with its user's row of a 10,000-user table) or `stream-join` (views joined
    /// with purchases, one per ten views, WITHIN 1 MINUTE GRACE PERIOD 10 SECONDS);
    /// `rekey-join` is `join` on an expression of the key, so that the views are first
    /// repartitioned through an internal topic, and `rekey-join-memory` the same re-keyed in
    /// memory (`eddy.join.repartition = 'memory'`); `table-aggregate` is `aggregate` over
    /// the page views read as a table of each user's latest view, so that every record takes
    /// the user's previous view out of its page's group (a retraction) and adds the new one.
    #[arg(long, default_value = "filter")]
    query: String,
}

const STREAM: &str = "CREATE STREAM pageviews (user_id STRING KEY, page STRING, duration_ms BIGINT, referrer STRING)
  WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON');";
const QUERY: &str = "CREATE STREAM long_views AS
  SELECT user_id, UCASE(page) AS page, duration_ms / 1000 AS seconds, COALESCE(referrer, 'direct') AS source
  FROM pageviews WHERE duration_ms >= 1000;";
const AGGREGATE: &str = "CREATE TABLE long_views AS
  SELECT page, COUNT(*) AS views, SUM(duration_ms) AS total, MAX(duration_ms) AS longest
  FROM pageviews GROUP BY page;";
const VIEWS_TABLE: &str = "CREATE TABLE latest_views (user_id STRING PRIMARY KEY, page STRING, duration_ms BIGINT,
  referrer STRING) WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON');";
const TABLE_AGGREGATE: &str = "CREATE TABLE long_views AS
  SELECT page, COUNT(*) AS views, SUM(duration_ms) AS total
  FROM latest_views GROUP BY page;";
const WINDOW: &str = "CREATE TABLE long_views AS
  SELECT page, COUNT(*) AS views, SUM(duration_ms) AS total
  FROM pageviews WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY page;";

const USERS: &str = "CREATE TABLE users (user_id STRING PRIMARY KEY, name STRING, region STRING)
  WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON');";
const PURCHASES: &str = "CREATE STREAM purchases (user_id STRING KEY, amount DOUBLE)
  WITH (KAFKA_TOPIC='purchases', VALUE_FORMAT='JSON');";
const JOIN: &str = "CREATE STREAM long_views AS
  SELECT p.user_id AS user_id, p.page AS page, p.duration_ms AS duration_ms, u.name AS name, u.region AS region
  FROM pageviews p LEFT JOIN users u ON p.user_id = u.user_id;";
const REKEY_JOIN: &str = "CREATE STREAM long_views AS
  SELECT u.user_id AS user_id, p.page AS page, p.duration_ms AS duration_ms, u.name AS name, u.region AS region
  FROM pageviews p LEFT JOIN users u ON CONCAT(p.user_id, '') = u.user_id;";
const REKEY_JOIN_IN_MEMORY: &str = "SET 'eddy.join.repartition' = 'memory';
CREATE STREAM long_views AS
  SELECT u.user_id AS user_id, p.page AS page, p.duration_ms AS duration_ms, u.name AS name, u.region AS region
  FROM pageviews p LEFT JOIN users u ON CONCAT(p.user_id, '') = u.user_id;";
const STREAM_JOIN: &str = "CREATE STREAM long_views AS
  SELECT p.user_id AS user_id, p.page AS page, b.amount AS amount
  FROM pageviews p JOIN purchases b WITHIN 1 MINUTE GRACE PERIOD 10 SECONDS ON p.user_id = b.user_id;";

/// The join benchmarks' other input: a row per user (time 0), or a purchase 5 s after every
/// tenth view, by the same user, in the view's partition.
async fn other_input(log: &Arc<dyn Log>, query: &str, records: u64, partitions: u32) -> Result<(), CliError> {
    match query {
        "join" | "rekey-join" | "rekey-join-memory" => {
            log.create_topic("users", &TopicSpec::new(partitions)).await?;
            let mut batches: Vec<Vec<NewRecord>> = vec![Vec::new(); partitions as usize];
            for user in 0..10_000u64 {
                let value = format!(r#"{{"name":"User {user}","region":"region-{}"}}"#, user % 7);
                let record = NewRecord::new(0, Some(Bytes::from(format!("user-{user}"))), Some(value.into()));
                batches[(user % u64::from(partitions)) as usize].push(record);
            }
            for (partition, batch) in batches.iter().enumerate() {
                log.append("users", partition as u32, batch).await?;
            }
        }
        "stream-join" => {
            log.create_topic("purchases", &TopicSpec::new(partitions)).await?;
            for partition in 0..partitions {
                let count = records / u64::from(partitions);
                let batch: Vec<NewRecord> = (0..count)
                    .map(|i| i * u64::from(partitions) + u64::from(partition))
                    .filter(|n| n % 10 == 0)
                    .map(|n| {
                        let value = format!(r#"{{"amount":{}.5}}"#, n % 100);
                        NewRecord::new(
                            (n * 10 + 5_000) as i64,
                            Some(Bytes::from(format!("user-{}", n % 10_000))),
                            Some(value.into()),
                        )
                    })
                    .collect();
                for chunk in batch.chunks(10_000) {
                    log.append("purchases", partition, chunk).await?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

pub async fn run(args: QueryBenchArgs) -> Result<(), CliError> {
    if args.records == 0 || args.partitions == 0 {
        return Err(CliError::User("--records and --partitions must be positive".into()));
    }
    let dir = tempfile::tempdir().map_err(|e| CliError::Internal(e.to_string()))?;
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path())?);
    log.create_topic("pageviews", &TopicSpec::new(args.partitions)).await?;

    // Input: JSON page views, a key per user, half of them long enough to pass the filter.
    let started = Instant::now();
    let mut bytes = 0u64;
    for partition in 0..args.partitions {
        let count = args.records / u64::from(args.partitions);
        let mut batch = Vec::with_capacity(10_000);
        for i in 0..count {
            let n = i * u64::from(args.partitions) + u64::from(partition);
            let value = format!(
                r#"{{"page":"/products/{}","duration_ms":{},"referrer":{}}}"#,
                n % 1000,
                (n * 7919) % 2000,
                if n % 3 == 0 { "null".to_string() } else { format!("\"campaign-{}\"", n % 17) }
            );
            bytes += value.len() as u64;
            // Event times 10 ms apart: a one-minute window holds 6,000 records.
            let time = (n * 10) as i64;
            batch.push(NewRecord::new(time, Some(Bytes::from(format!("user-{}", n % 10_000))), Some(value.into())));
            if batch.len() == 10_000 {
                log.append("pageviews", partition, &batch).await?;
                batch.clear();
            }
        }
        log.append("pageviews", partition, &batch).await?;
    }
    let records = args.records / u64::from(args.partitions) * u64::from(args.partitions);
    other_input(&log, &args.query, records, args.partitions).await?;
    let produce_secs = started.elapsed().as_secs_f64();

    let mut session = Session::open(Arc::clone(&log)).await.map_err(|e| CliError::Internal(e.to_string()))?;
    let mut ignore = |_: StatementResult| {};
    let other = match args.query.as_str() {
        "join" | "rekey-join" | "rekey-join-memory" => USERS,
        "stream-join" => PURCHASES,
        "table-aggregate" => VIEWS_TABLE,
        _ => "",
    };
    let setup = format!("SET 'auto.offset.reset' = 'earliest'; {STREAM} {other}");
    session.execute(&setup, &mut ignore).await.map_err(|e| CliError::Internal(e.to_string()))?;

    // The floor: decoding the same records into batches, nothing else.
    let source =
        session.catalog().source("PAGEVIEWS").cloned().ok_or_else(|| CliError::Internal("no stream".into()))?;
    let schema = row_schema(&source);
    let started = Instant::now();
    let mut decoded_rows = 0usize;
    for partition in 0..args.partitions {
        let mut offset = 0;
        loop {
            let fetch = log.read("pageviews", partition, offset, 256 * 1024).await?;
            let Some(last) = fetch.records.last() else { break };
            offset = last.offset + 1;
            let rows = decode(&source, &schema, partition, &fetch.records).map_err(|e| CliError::Internal(e.0))?;
            decoded_rows += rows.batch.num_rows();
        }
    }
    let decode_secs = started.elapsed().as_secs_f64();

    // The query, from its start until it has written everything.
    let started = Instant::now();
    let query = match args.query.as_str() {
        "filter" => QUERY,
        "aggregate" => AGGREGATE,
        "table-aggregate" => TABLE_AGGREGATE,
        "window" => WINDOW,
        "join" => JOIN,
        "rekey-join" => REKEY_JOIN,
        "rekey-join-memory" => REKEY_JOIN_IN_MEMORY,
        "stream-join" => STREAM_JOIN,
        other => {
            return Err(CliError::User(format!(
                "--query is filter, aggregate, table-aggregate, window, join, rekey-join, rekey-join-memory or \
                 stream-join, not {other}"
            )));
        }
    };
    session.execute(query, &mut ignore).await.map_err(|e| CliError::Internal(e.to_string()))?;
    session.wait_until_idle().await.map_err(|e| CliError::Internal(e.to_string()))?;
    let query_secs = started.elapsed().as_secs_f64();
    let written: u64 = log.describe_topic("LONG_VIEWS").await?.partitions.iter().map(|p| p.latest_offset).sum();
    session.shutdown().await;

    let rate = |n: f64, secs: f64| format!("{:.2} M records/s", n / secs / 1e6);
    print_line(format_args!(
        "input: {records} JSON records ({:.1} MB) in {} partitions, produced in {produce_secs:.2} s",
        bytes as f64 / 1e6,
        args.partitions
    ))?;
    print_line(format_args!(
        "decode only: {decoded_rows} rows in {decode_secs:.2} s ({})",
        rate(decoded_rows as f64, decode_secs)
    ))?;
    print_line(format_args!(
        "{} query: {records} in, {written} out in {query_secs:.2} s ({} in, {:.1} MB/s)",
        args.query,
        rate(records as f64, query_secs),
        bytes as f64 / 1e6 / query_secs
    ))?;
    Ok(())
}
