//! `eddy bench log`: how fast the embedded log appends and reads 100-byte records, and how
//! that compares with writing and reading the same bytes to a plain file (the ceiling).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use clap::Args;

use crate::cli::CliError;
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
    let dir = args.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("eddy-bench-log-{}", std::process::id())));
    let internal = |e: std::io::Error| CliError::Internal(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(internal)?;

    let result = measure(&args, configs, &dir).await;
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn measure(args: &LogBenchArgs, configs: BTreeMap<String, String>, dir: &std::path::Path) -> Result<(), CliError> {
    let internal = |e: std::io::Error| CliError::Internal(format!("{}: {e}", dir.display()));
    let log = EmbeddedLog::open(dir.join("data"))?;
    let topic = "bench";
    let _ = log.delete_topic(topic).await;
    log.create_topic(topic, &TopicSpec { configs, ..TopicSpec::new(1) }).await?;

    let value = Bytes::from((0..args.value_bytes).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
    let batch: Vec<NewRecord> =
        (0..args.batch_records).map(|_| NewRecord::new(1_700_000_000_000, None, Some(value.clone()))).collect();
    println!(
        "eddy bench log: {} records, {}-byte values, {} records per append, data in {}",
        args.records,
        args.value_bytes,
        args.batch_records,
        dir.display()
    );

    let started = Instant::now();
    let mut written = 0u64;
    while written < args.records {
        let n = (args.records - written).min(args.batch_records as u64) as usize;
        log.append(topic, 0, &batch[..n]).await?;
        written += n as u64;
    }
    let append_seconds = started.elapsed().as_secs_f64();
    let log_bytes = log.describe_topic(topic).await?.partitions[0].size_bytes.unwrap_or(0);
    report("log append", args.records, log_bytes, append_seconds);

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
    report("log read", read, log_bytes, read_seconds);
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
    report("plain write", args.records, plain, started.elapsed().as_secs_f64());

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
    report("plain read", args.records, got, started.elapsed().as_secs_f64());
    Ok(())
}

fn report(what: &str, records: u64, bytes: u64, seconds: f64) {
    let seconds = seconds.max(1e-9);
    println!(
        "{what:<12} {records} records in {seconds:.3} s = {:.2} M records/s, {:.0} MB/s",
        records as f64 / seconds / 1e6,
        bytes as f64 / seconds / 1e6
    );
}
