//! `eddy bench latency`: records produced at a fixed rate into a stream that feeds a
//! persistent query (`CREATE STREAM … AS SELECT` with a filter and a projection), and the
//! time from each record's append to its result being readable in the output topic: p50, p99
//! and max, on the embedded log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;

use crate::cli::{CliError, print_line};
use crate::log::{EmbeddedLog, Follower, Log, NewRecord, TopicSpec};
use crate::session::{Session, StatementResult};

#[derive(Debug, Args)]
pub struct LatencyBenchArgs {
    /// Records per second.
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// How long to produce.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 2)]
    partitions: u32,
    /// The query: `filter` (a filter and a projection), `rekey-join` (each event enriched
    /// with its account's row, joined on a value column: repartitioned through an internal
    /// topic) or `rekey-join-memory` (the same re-keyed in memory).
    #[arg(long, default_value = "filter")]
    query: String,
}

const FILTER: &str = "CREATE STREAM out AS SELECT id, sent_us, amount * 2 AS doubled FROM events WHERE amount >= 0;";
const REKEY_JOIN: &str = "CREATE TABLE accounts (id BIGINT PRIMARY KEY, tier STRING)
  WITH (KAFKA_TOPIC='accounts', VALUE_FORMAT='JSON', PARTITIONS=2);
INSERT INTO accounts (ROWTIME, id, tier) VALUES (0, 0, 'gold');
CREATE STREAM out AS SELECT e.account AS account, e.sent_us AS sent_us, a.tier AS tier
  FROM events e LEFT JOIN accounts a ON e.account = a.id;";

fn internal(e: impl std::fmt::Display) -> CliError {
    CliError::Internal(e.to_string())
}

pub async fn run(args: LatencyBenchArgs) -> Result<(), CliError> {
    if args.rate == 0 || args.seconds == 0 || args.partitions == 0 {
        return Err(CliError::User("--rate, --seconds and --partitions must be positive".into()));
    }
    let dir = tempfile::tempdir().map_err(internal)?;
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path())?);
    log.create_topic("events", &TopicSpec::new(args.partitions)).await?;
    let mut session = Session::open(Arc::clone(&log)).await.map_err(internal)?;
    let mut ignore = |_: StatementResult| {};
    let query = match args.query.as_str() {
        "filter" => FILTER.to_owned(),
        "rekey-join" => REKEY_JOIN.to_owned(),
        "rekey-join-memory" => format!("SET 'eddy.join.repartition' = 'memory'; {REKEY_JOIN}"),
        other => {
            return Err(CliError::User(format!("--query is filter, rekey-join or rekey-join-memory, not {other}")));
        }
    };
    let events = "CREATE STREAM events (id BIGINT KEY, sent_us BIGINT, amount INT, account BIGINT)
      WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON');";
    session.execute(&format!("{events} {query}"), &mut ignore).await.map_err(internal)?;
    let epoch = Instant::now();
    let micros = move || epoch.elapsed().as_micros() as i64;

    // The reader: follows the output, noting each record's latency.
    let reader = {
        let log = Arc::clone(&log);
        let expected = args.rate * args.seconds;
        tokio::spawn(async move {
            let partitions = log.partition_count("OUT").await.unwrap_or(1);
            let mut follower = Follower::new(log.as_ref(), "OUT", (0..partitions).map(|p| (p, 0)).collect(), false);
            let mut latencies: Vec<u32> = Vec::with_capacity(expected as usize);
            while (latencies.len() as u64) < expected {
                let Ok(Some((_, records))) = follower.next().await else { break };
                let now = micros();
                for record in records {
                    let sent = record
                        .value
                        .as_deref()
                        .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
                        .and_then(|v| v["SENT_US"].as_i64())
                        .unwrap_or(now);
                    latencies.push(u32::try_from(now - sent).unwrap_or(u32::MAX));
                }
            }
            latencies
        })
    };

    // The producer: a tick per millisecond, each appending what the rate asks by then.
    let total = args.rate * args.seconds;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * args.rate as f64) as u64).min(total);
        let mut batches: Vec<Vec<NewRecord>> = vec![Vec::new(); args.partitions as usize];
        let now = micros();
        for id in sent..due {
            let value = format!(r#"{{"sent_us":{now},"amount":{},"account":{}}}"#, id % 100, id % 1000);
            let key = Bytes::copy_from_slice(&(id as i64).to_be_bytes());
            batches[(id % u64::from(args.partitions)) as usize].push(NewRecord::new(
                crate::log::record::now_ms(),
                Some(key),
                Some(value.into()),
            ));
        }
        for (partition, batch) in batches.iter().enumerate() {
            if !batch.is_empty() {
                log.append("events", partition as u32, batch).await?;
            }
        }
        sent = due;
    }
    let produce_secs = started.elapsed().as_secs_f64();
    let mut latencies = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .map_err(|_| internal("the output did not arrive within a minute"))?
        .map_err(internal)?;
    session.shutdown().await;
    latencies.sort_unstable();
    let at = |q: f64| latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)));
    let ms = |v: Option<&u32>| v.map_or(f64::NAN, |v| f64::from(*v) / 1000.0);
    print_line(format_args!(
        "latency query={} rate={} seconds={} records={} produced_in={produce_secs:.2}s p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        args.query,
        args.rate,
        args.seconds,
        latencies.len(),
        ms(at(0.50)),
        ms(at(0.99)),
        ms(latencies.last())
    ))?;
    Ok(())
}
