//! `eddy bench log`: how fast the embedded log appends and reads 100-byte records, and how
//! that compares with writing and reading the same bytes to a plain file (the ceiling).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;

use crate::cli::{CliError, print_line};
use crate::log::config::parse_config_pair;
use crate::log::{EmbeddedLog, Log, NewRecord, TopicSpec};

#[derive(Debug, Args)]
pub struct LogBenchArgs {
    /// Records to append, then read.
    #[arg(long, default_value_t = 5_000_000)]
    records: u64,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Records per append call.
    #[arg(long, default_value_t = 1000)]
    batch_records: usize,
    /// Topic configs for the benchmark topic, as name=value (e.g. flush.messages=1).
    #[arg(long = "config", value_name = "NAME=VALUE")]
    configs: Vec<String>,
    /// Appends whose wake-up latency is measured (a reader on another handle, woken through
    /// inotify as another process would be).
    #[arg(long, default_value_t = 500)]
    wake_rounds: u32,
    /// Where to write (default: a fresh directory under the system's temp dir, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub async fn run(args: LogBenchArgs) -> Result<(), CliError> {
    if args.batch_records == 0 || args.records == 0 {
        return Err(CliError::User("--records and --batch-records must be positive".into()));
    }
    let configs = args.configs.iter().map(|c| parse_config_pair(c)).collect::<Result<BTreeMap<_, _>, _>>()?;
    let scratch = args.dir.is_none();
    let dir =
        args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("eddy-bench-log-{}", std::process::id())));
    let internal = |e: std::io::Error| CliError::Internal(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(internal)?;

    let result = measure(&args, configs, &dir).await;
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn measure(
    args: &LogBenchArgs,
    configs: BTreeMap<String, String>,
    dir: &std::path::Path,
) -> Result<(), CliError> {
    let internal = |e: std::io::Error| CliError::Internal(format!("{}: {e}", dir.display()));
    let log = EmbeddedLog::open(dir.join("data"))?;
    let topic = "bench";
    let _ = log.delete_topic(topic).await;
    log.create_topic(topic, &TopicSpec { configs, ..TopicSpec::new(1) }).await?;

    let value = Bytes::from((0..args.value_bytes).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
    let batch: Vec<NewRecord> =
        (0..args.batch_records).map(|_| NewRecord::new(1_700_000_000_000, None, Some(value.clone()))).collect();
    print_line(format_args!(
        "eddy bench log: {} records, {}-byte values, {} records per append, data in {}",
        args.records,
        args.value_bytes,
        args.batch_records,
        dir.display()
    ))?;

    let started = Instant::now();
    let mut written = 0u64;
    while written < args.records {
        let n = (args.records - written).min(args.batch_records as u64) as usize;
        log.append(topic, 0, &batch[..n]).await?;
        written += n as u64;
    }
    let append_seconds = started.elapsed().as_secs_f64();
    let log_bytes = log.describe_topic(topic).await?.partitions[0].size_bytes.unwrap_or(0);
    report("log append", args.records, log_bytes, append_seconds)?;

    let started = Instant::now();
    let mut offset = 0u64;
    let mut read = 0u64;
    let mut checksum = 0u64;
    while offset < args.records {
        let fetch = log.read(topic, 0, offset, 1024 * 1024).await?;
        for record in &fetch.records {
            checksum = checksum.wrapping_add(record.value.as_ref().map_or(0, |v| v.len() as u64));
        }
        read += fetch.records.len() as u64;
        offset = fetch.records.last().map_or(args.records, |r| r.offset + 1);
    }
    let read_seconds = started.elapsed().as_secs_f64();
    report("log read", read, log_bytes, read_seconds)?;
    if checksum != read * args.value_bytes as u64 {
        return Err(CliError::Internal("read back different values than were written".into()));
    }
    drop(log);

    // The ceiling: the same number of bytes, in the same write sizes, to a plain file.
    let path = dir.join("plain.bin");
    let chunk = vec![b'x'; (log_bytes / args.records.div_ceil(args.batch_records as u64)).max(1) as usize];
    let started = Instant::now();
    let mut file = std::fs::File::create(&path).map_err(internal)?;
    let mut plain = 0u64;
    while plain < log_bytes {
        file.write_all(&chunk).map_err(internal)?;
        plain += chunk.len() as u64;
    }
    drop(file);
    report("plain write", args.records, plain, started.elapsed().as_secs_f64())?;

    let started = Instant::now();
    let mut file = std::fs::File::open(&path).map_err(internal)?;
    let mut buf = vec![0u8; 1024 * 1024];
    let mut got = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(internal)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    report("plain read", args.records, got, started.elapsed().as_secs_f64())?;

    if args.wake_rounds > 0 {
        wake_latency(&dir.join("data"), args.wake_rounds).await?;
    }
    Ok(())
}

/// How long after an append a reader waiting on another handle of the data directory (so
/// woken by the file watcher, as a reader in another process is) has the record.
async fn wake_latency(dir: &std::path::Path, rounds: u32) -> Result<(), CliError> {
    let writer = EmbeddedLog::open(dir)?;
    let reader = Arc::new(EmbeddedLog::open(dir)?);
    let topic = "wake";
    let _ = writer.delete_topic(topic).await;
    writer.create_topic(topic, &TopicSpec::new(1)).await?;
    let (woke_tx, mut woke_rx) = tokio::sync::mpsc::channel::<Instant>(1);
    let reading = tokio::spawn({
        let reader = Arc::clone(&reader);
        async move {
            for offset in 0..u64::from(rounds) {
                match reader.wait_for_data(topic, 0, offset, Duration::from_secs(10)).await {
                    Ok(true) => {
                        if woke_tx.send(Instant::now()).await.is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        }
    });
    let record = [NewRecord::new(0, None, Some(Bytes::from_static(b"ping")))];
    let mut latencies = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        // Let the reader park first (this pause is the benchmark's pacing, not a measurement).
        tokio::time::sleep(Duration::from_millis(2)).await;
        let appended = Instant::now();
        writer.append(topic, 0, &record).await?;
        let Some(woke) = woke_rx.recv().await else {
            return Err(CliError::Internal("the reader stopped before every record arrived".into()));
        };
        latencies.push(woke.saturating_duration_since(appended));
    }
    reading.abort();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    print_line(format_args!(
        "{:<12} {rounds} appends seen by a reader on another handle: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        "wake",
        at(0.5),
        at(0.99),
        at(1.0)
    ))
}

fn report(what: &str, records: u64, bytes: u64, seconds: f64) -> Result<(), CliError> {
    let seconds = seconds.max(1e-9);
    print_line(format_args!(
        "{what:<12} {records} records in {seconds:.3} s = {:.2} M records/s, {:.0} MB/s",
        records as f64 / seconds / 1e6,
        bytes as f64 / seconds / 1e6
    ))
}
