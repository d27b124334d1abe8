//! `eddy bench bids`: the Nexmark-style queries of the Flink SQL peer
//! (`../shared/peers/flink/run_flink.py`) over the same JSON-lines bid file: each as a
//! persistent query on the embedded log, then as a DataFusion batch query over the file (the
//! practical ceiling). Prints `eddy Q events=N seconds=S eps=E` and `datafusion Q …`, and a
//! `check` line of the results in the form of `ref_check.py`, to compare with it.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;

use crate::cli::{CliError, print_line};
use crate::log::{EmbeddedLog, Log, NewRecord, TopicSpec};
use crate::session::{Session, StatementResult};

#[derive(Debug, Args)]
pub struct BidsBenchArgs {
    /// The bids, one JSON object per line (`gen_bids.py N FILE`).
    #[arg(long)]
    input: PathBuf,
    /// q0 (projection), q1 (currency conversion), q2 (filter), qw (10 s tumbling COUNT/MAX
    /// per auction), q5 (10 s windows hopping by 2 s, COUNT per auction), qagg (COUNT/SUM per
    /// channel), or all.
    #[arg(long, default_value = "all")]
    query: String,
    /// Partitions of the input topic (the queries read them on both cores).
    #[arg(long, default_value_t = 2)]
    partitions: u32,
    /// Skip the DataFusion batch run.
    #[arg(long)]
    no_datafusion: bool,
    /// Also time the stages of a stateless query alone, on one core: reading the input
    /// from the log, decoding it, encoding the output (q0's columns), appending it.
    #[arg(long)]
    stages: bool,
    /// Runs of each query (Eddy's each on a fresh log); with more than one, a last line
    /// gives the median (single runs on a shared machine vary by ±10%).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// The bids' value format in the topic, and so the queries' output's: JSON (the lines as
    /// they are), AVRO, JSON_SR or PROTOBUF (the lines encoded under the schema the stream
    /// registers in the embedded schema registry; not timed).
    #[arg(long, default_value = "JSON")]
    format: String,
}

const QUERIES: [&str; 6] = ["q0", "q1", "q2", "qw", "q5", "qagg"];

/// The stream over the bids in value format `format`: event time from `date_time`.
fn bids(format: &str) -> String {
    format!(
        "CREATE STREAM bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
    date_time STRING, extra STRING)
  WITH (KAFKA_TOPIC='bids', VALUE_FORMAT='{format}', TIMESTAMP='date_time',
        TIMESTAMP_FORMAT='yyyy-MM-dd HH:mm:ss.SSS');"
    )
}

/// The formats the bids can be loaded in.
const FORMATS: [&str; 4] = ["JSON", "AVRO", "JSON_SR", "PROTOBUF"];

/// Eddy's text of each query: Flink's, in ksqlDB's dialect. Flink's window TVFs emit each
/// window once, when the watermark (1 s behind) passes its end: `EMIT FINAL` with a grace
/// period of 1 s.
fn eddy_query(query: &str) -> Option<&'static str> {
    Some(match query {
        "q0" => "CREATE STREAM out AS SELECT auction, bidder, price, date_time FROM bids;",
        "q1" => "CREATE STREAM out AS SELECT auction, bidder, 0.908 * price AS price, date_time FROM bids;",
        "q2" => "CREATE STREAM out AS SELECT auction, price FROM bids WHERE auction % 123 = 0;",
        "qw" => {
            "CREATE TABLE out AS SELECT auction, COUNT(*) AS c, MAX(price) AS m FROM bids
               WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY auction EMIT FINAL;"
        }
        "q5" => {
            "CREATE TABLE out AS SELECT auction, COUNT(*) AS c FROM bids
               WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 2 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY auction EMIT FINAL;"
        }
        "qagg" => "CREATE TABLE out AS SELECT channel, COUNT(*) AS c, SUM(price) AS s FROM bids GROUP BY channel;",
        _ => return None,
    })
}

/// DataFusion's text of each query, as a batch over the file.
fn datafusion_query(query: &str) -> Option<&'static str> {
    Some(match query {
        "q0" => "SELECT auction, bidder, price, date_time FROM bids",
        "q1" => "SELECT auction, bidder, 0.908 * price AS price, date_time FROM bids",
        "q2" => "SELECT auction, price FROM bids WHERE auction % 123 = 0",
        "qw" => {
            "SELECT auction, date_bin(INTERVAL '10 seconds', to_timestamp(date_time)) AS w, COUNT(*) AS c, MAX(price) AS m
             FROM bids GROUP BY auction, w"
        }
        "q5" => {
            "SELECT auction, w, COUNT(*) AS c FROM (
               SELECT auction, unnest(make_array(t, t - INTERVAL '2 seconds', t - INTERVAL '4 seconds',
                                                 t - INTERVAL '6 seconds', t - INTERVAL '8 seconds')) AS w
               FROM (SELECT auction, date_bin(INTERVAL '2 seconds', to_timestamp(date_time)) AS t FROM bids))
             GROUP BY auction, w"
        }
        "qagg" => "SELECT channel, COUNT(*) AS c, SUM(price) AS s FROM bids GROUP BY channel",
        _ => return None,
    })
}

fn internal(e: impl std::fmt::Display) -> CliError {
    CliError::Internal(e.to_string())
}

pub async fn run(args: BidsBenchArgs) -> Result<(), CliError> {
    let queries: Vec<&str> = match args.query.as_str() {
        "all" => QUERIES.to_vec(),
        q if QUERIES.contains(&q) => vec![q],
        other => return Err(CliError::User(format!("--query is one of {} or all, not {other}", QUERIES.join(", ")))),
    };
    if args.partitions == 0 {
        return Err(CliError::User("--partitions must be positive".into()));
    }
    let format = args.format.to_uppercase();
    if !FORMATS.contains(&format.as_str()) {
        return Err(CliError::User(format!("--format is one of {}, not {}", FORMATS.join(", "), args.format)));
    }
    let lines = read_lines(&args.input)?;
    let events = lines.len();
    let runs = args.runs.max(1);
    for query in queries {
        let (mut seconds, mut cpu) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for i in 0..runs {
            let run = run_eddy(query, &lines, &format, args.partitions, args.stages && i == 0).await?;
            if i == 0 {
                print_line(format_args!("{}", run.check))?;
            }
            if let Some(stages) = run.stages {
                print_line(format_args!("{stages}"))?;
            }
            print_line(format_args!(
                "eddy {query} format={format} events={events} seconds={:.3} eps={:.0} cpu_seconds={:.2}",
                run.seconds,
                events as f64 / run.seconds,
                run.cpu_seconds
            ))?;
            seconds.push(run.seconds);
            cpu.push(run.cpu_seconds);
        }
        if runs > 1 {
            let (s, c) = (median(&mut seconds), median(&mut cpu));
            print_line(format_args!(
                "eddy {query} format={format} median_of={runs} events={events} seconds={s:.3} eps={:.0} cpu_seconds={c:.2}",
                events as f64 / s
            ))?;
        }
        if !args.no_datafusion {
            let mut seconds = Vec::with_capacity(runs);
            for _ in 0..runs {
                let s = run_datafusion(query, &args.input).await?;
                print_line(format_args!(
                    "datafusion {query} events={events} seconds={s:.3} eps={:.0}",
                    events as f64 / s
                ))?;
                seconds.push(s);
            }
            if runs > 1 {
                let s = median(&mut seconds);
                print_line(format_args!(
                    "datafusion {query} median_of={runs} events={events} seconds={s:.3} eps={:.0}",
                    events as f64 / s
                ))?;
            }
        }
    }
    Ok(())
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The file's lines (not timed).
pub(super) fn read_lines(path: &std::path::Path) -> Result<Vec<Bytes>, CliError> {
    let file = std::fs::File::open(path).map_err(|e| CliError::User(format!("cannot read {}: {e}", path.display())))?;
    let mut lines = Vec::new();
    for line in std::io::BufReader::with_capacity(1 << 20, file).split(b'\n') {
        let line = line.map_err(|e| CliError::User(format!("cannot read {}: {e}", path.display())))?;
        if !line.is_empty() {
            lines.push(Bytes::from(line));
        }
    }
    Ok(lines)
}

/// What one run of a query measured.
struct EddyRun {
    /// From the query's start until everything is written.
    seconds: f64,
    /// The CPU time the process spent meanwhile (all threads).
    cpu_seconds: f64,
    /// The `check` line.
    check: String,
    /// The `stages` line, when asked for.
    stages: Option<String>,
}

/// The CPU time this process has used (user and system, all threads), from `/proc`; zero
/// where there is no `/proc`.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name; 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `query` as a persistent query over `lines` loaded in `format` into a fresh embedded
/// log.
async fn run_eddy(
    query: &str,
    lines: &[Bytes],
    format: &str,
    partitions: u32,
    stages: bool,
) -> Result<EddyRun, CliError> {
    let dir = tempfile::tempdir().map_err(internal)?;
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path())?);
    log.create_topic("bids", &TopicSpec::new(partitions)).await?;
    // The stream first: in a registry's format, it registers the schema the bids are
    // written with.
    let mut session = Session::open(Arc::clone(&log)).await.map_err(internal)?;
    let mut ignore = |_: StatementResult| {};
    let setup = format!("SET 'auto.offset.reset' = 'earliest'; {}", bids(format));
    session.execute(&setup, &mut ignore).await.map_err(internal)?;
    let source = session.catalog().source("BIDS").cloned().ok_or_else(|| internal("no BIDS"))?;
    // Lines to records' values: as they are in JSON, else through the stream's codec.
    let reencode = |lines: Vec<Bytes>| -> Result<Vec<Option<Bytes>>, CliError> {
        if format == crate::format::JSON {
            return Ok(lines.into_iter().map(Some).collect());
        }
        let json = crate::format::builtin(crate::format::JSON)
            .codec(source.value_codec.schema().clone(), crate::format::FormatOptions::default())
            .map_err(|e| internal(e.0))?;
        let payloads: Vec<&[u8]> = lines.iter().map(|l| l.as_ref()).collect();
        let decoded = json.decode(&payloads).map_err(|e| internal(e.0))?;
        source.value_codec.encode(&decoded.batch).map_err(|e| internal(e.0))
    };
    let mut batches: Vec<Vec<Bytes>> = vec![Vec::new(); partitions as usize];
    let mut stderr = std::io::stderr();
    let append = async |partition: usize, batch: Vec<Bytes>| -> Result<(), CliError> {
        let records: Vec<NewRecord> =
            reencode(batch)?.into_iter().map(|value| NewRecord::new(0, None, value)).collect();
        log.append("bids", partition as u32, &records).await?;
        Ok(())
    };
    for (i, line) in lines.iter().enumerate() {
        let partition = i % partitions as usize;
        batches[partition].push(line.clone());
        if batches[partition].len() == 10_000 {
            append(partition, std::mem::take(&mut batches[partition])).await?;
        }
        if i % 200_000 == 0 {
            let _ = write!(stderr, "\r{query}: loading {i} of {} bids", lines.len());
        }
    }
    // Windows close as stream time passes them: a last bid an hour later (auction -1, left out
    // of the check) closes them all, as the end of a bounded input does in Flink.
    let windowed = matches!(query, "qw" | "q5");
    for (partition, batch) in batches.iter_mut().enumerate() {
        if windowed {
            let late = r#"{"auction":-1,"bidder":0,"price":0,"channel":"end","url":"","date_time":"2099-01-01 00:00:00.000","extra":""}"#;
            batch.push(Bytes::from_static(late.as_bytes()));
        }
        append(partition, std::mem::take(batch)).await?;
    }
    let text = eddy_query(query).ok_or_else(|| internal("no such query"))?;

    let stages = match stages {
        true => Some(time_stages(query, &session, &log, partitions).await?),
        false => None,
    };
    let (started, cpu_started) = (Instant::now(), cpu_seconds());
    session.execute(text, &mut ignore).await.map_err(internal)?;
    let total = lines.len() as u64;
    let progress = async {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let read: u64 = session.query_metrics().await.iter().map(|m| m.records_in).sum();
            let _ = write!(std::io::stderr(), "\r{query}: {read} of {total} bids processed      ");
        }
    };
    tokio::select! {
        idle = session.wait_until_idle() => idle.map_err(internal)?,
        () = progress => {}
    }
    let (seconds, cpu_seconds) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_started);
    let _ = writeln!(stderr, "\r{query}: done in {seconds:.2} s{}", " ".repeat(30));
    let skipped: u64 = session.query_metrics().await.iter().map(|m| m.errors).sum();
    let out = session.catalog().source("OUT").cloned();
    session.shutdown().await;
    if skipped > 0 {
        return Err(internal(format!("{skipped} bids were skipped: see PROCESSING_LOG")));
    }
    let check = check_line(query, log.as_ref(), out.as_deref()).await?;
    Ok(EddyRun { seconds, cpu_seconds, check, stages })
}

/// Times the stages of a stateless query over the bids one after another, on one core:
/// reading every record from the log, decoding them into rows, encoding q0's columns as
/// JSON, and appending those records to a topic.
async fn time_stages(query: &str, session: &Session, log: &Arc<dyn Log>, partitions: u32) -> Result<String, CliError> {
    use crate::engine::source::{decode, row_schema};
    let source = session.catalog().source("BIDS").cloned().ok_or_else(|| internal("no BIDS"))?;
    let schema = row_schema(&source);
    let timed = Instant::now();
    let mut fetches = Vec::new();
    for partition in 0..partitions {
        let mut offset = 0;
        loop {
            let fetch = log.read("bids", partition, offset, 1 << 20).await?;
            let Some(last) = fetch.records.last() else { break };
            offset = last.offset + 1;
            fetches.push((partition, fetch.records));
        }
    }
    let read = timed.elapsed().as_secs_f64();
    let timed = Instant::now();
    let mut batches = Vec::new();
    for (partition, records) in &fetches {
        batches.push(decode(&source, &schema, *partition, records).map_err(|e| internal(e.0))?.batch);
    }
    let decoded = timed.elapsed().as_secs_f64();
    let columns = ["AUCTION", "BIDDER", "PRICE", "DATE_TIME"];
    let projected = batches
        .iter()
        .map(|b| b.project(&columns.map(|c| b.schema().index_of(c).unwrap_or(0))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    let codec = crate::format::builtin(crate::format::JSON)
        .codec(
            projected.first().map(|b| b.schema()).ok_or_else(|| internal("no rows"))?,
            crate::format::FormatOptions::default(),
        )
        .map_err(|e| internal(e.0))?;
    let timed = Instant::now();
    let mut encoded = Vec::new();
    for batch in &projected {
        encoded.push(codec.encode(batch).map_err(|e| internal(e.0))?);
    }
    let encode = timed.elapsed().as_secs_f64();
    log.create_topic("stages", &TopicSpec::new(partitions)).await?;
    let timed = Instant::now();
    for (i, values) in encoded.into_iter().enumerate() {
        let records: Vec<NewRecord> = values.into_iter().map(|value| NewRecord::new(0, None, value)).collect();
        log.append("stages", i as u32 % partitions, &records).await?;
    }
    let append = timed.elapsed().as_secs_f64();
    Ok(format!("stages {query} read={read:.3} decode={decoded:.3} encode={encode:.3} append={append:.3}"))
}

/// The results in `ref_check.py`'s form.
async fn check_line(query: &str, log: &dyn Log, out: Option<&crate::catalog::Source>) -> Result<String, CliError> {
    use crate::conformance::records::{Side, to_json};
    let mut values: Vec<serde_json::Value> = Vec::new();
    // A table's final row per key (its key bytes: the group and window).
    let mut last: BTreeMap<Vec<u8>, serde_json::Value> = BTreeMap::new();
    for partition in 0..log.partition_count("OUT").await? {
        let mut offset = 0;
        loop {
            let fetch = log.read("OUT", partition, offset, 1 << 20).await?;
            let Some(end) = fetch.records.last().map(|r| r.offset + 1) else { break };
            offset = end;
            for record in fetch.records {
                // (Read as OUT's format writes it.)
                let value = to_json(out, Side::Value, record.value.as_deref());
                match query {
                    "qw" | "q5" | "qagg" => {
                        last.insert(record.key.map(|k| k.to_vec()).unwrap_or_default(), value);
                    }
                    _ => values.push(value),
                }
            }
        }
    }
    let int = |v: &serde_json::Value, name: &str| v[name].as_i64().unwrap_or(0);
    let rows = values.len();
    Ok(match query {
        "q0" => format!("q0 rows={rows}"),
        "q1" => {
            let sum: f64 = values.iter().map(|v| v["PRICE"].as_f64().unwrap_or(0.0)).sum();
            format!("q1 rows={rows} sum(0.908*price)={sum:.3}")
        }
        "q2" => format!("q2 rows={rows} sum(price)={}", values.iter().map(|v| int(v, "PRICE")).sum::<i64>()),
        "qw" | "q5" => {
            // The closing bid's window is no bid's.
            let windows: Vec<&serde_json::Value> =
                last.iter().filter(|(key, _)| !key.starts_with(&(-1i64).to_be_bytes())).map(|(_, v)| v).collect();
            let counts: i64 = windows.iter().map(|v| int(v, "C")).sum();
            if query == "qw" {
                let maxima: i64 = windows.iter().map(|v| int(v, "M")).sum();
                format!("qw rows={} sum(c)={counts} sum(m)={maxima}", windows.len())
            } else {
                let max = windows.iter().map(|v| int(v, "C")).max().unwrap_or(0);
                format!("q5 rows={} sum(c)={counts} max(c)={max}", windows.len())
            }
        }
        _ => {
            let groups: Vec<&serde_json::Value> = last.values().filter(|v| !v.is_null()).collect();
            let mut line = format!(
                "qagg groups={} sum(c)={} sum(s)={}",
                groups.len(),
                groups.iter().map(|v| int(v, "C")).sum::<i64>(),
                groups.iter().map(|v| int(v, "S")).sum::<i64>()
            );
            for channel in ["Google", "Facebook", "Baidu", "Apple"] {
                let group = last.get(channel.as_bytes());
                let (c, s) = group.map_or((0, 0), |v| (int(v, "C"), int(v, "S")));
                line.push_str(&format!("\nqagg {channel} c={c} s={s}"));
            }
            line
        }
    })
}

/// Runs `query` as a DataFusion batch query over the file; returns the seconds it took.
async fn run_datafusion(query: &str, input: &std::path::Path) -> Result<f64, CliError> {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::{JsonReadOptions, SessionConfig, SessionContext};
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    let schema = Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("bidder", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("url", DataType::Utf8, true),
        Field::new("date_time", DataType::Utf8, true),
        Field::new("extra", DataType::Utf8, true),
    ]);
    let path = input.to_str().ok_or_else(|| CliError::User("the input path is not UTF-8".into()))?;
    let options = JsonReadOptions { schema: Some(&schema), file_extension: "", ..Default::default() };
    let started = Instant::now();
    ctx.register_json("bids", path, options).await.map_err(internal)?;
    let text = datafusion_query(query).ok_or_else(|| internal("no such query"))?;
    let batches = ctx.sql(text).await.map_err(internal)?.collect().await.map_err(internal)?;
    let seconds = started.elapsed().as_secs_f64();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    tracing::info!(query, rows, "datafusion batch done");
    Ok(seconds)
}
