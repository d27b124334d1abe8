//! `eddy topic`: Kafka's topic tools (kafka-topics, the console producer and consumer) for
//! the embedded log.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::CliError;
use super::format::RecordFormat;
use crate::log::config::parse_config_pair;
use crate::log::record::now_ms;
use crate::log::{Log, LogError, NewRecord, Producer, TopicSpec, wait_for_any};

/// Records buffered by `produce` before they are appended, at most.
const PRODUCE_BATCH_RECORDS: usize = 10_000;
/// Bytes asked of the log per read by `consume`.
const CONSUME_FETCH_BYTES: usize = 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    #[command(after_help = "Example:\n  eddy topic create orders --partitions 3 --config retention.ms=86400000")]
    Create(CreateArgs),
    /// List topics.
    #[command(after_help = "Example:\n  eddy topic list")]
    List,
    /// Show a topic's partitions (earliest and latest offsets) and configs.
    #[command(after_help = "Example:\n  eddy topic describe orders")]
    Describe { name: String },
    /// Delete a topic and its data.
    #[command(after_help = "Example:\n  eddy topic delete orders")]
    Delete { name: String },
    /// Append one record per line of standard input.
    #[command(after_help = "Example:\n  printf 'alice:1\\nbob:2\\n' | eddy topic produce orders --key-separator :")]
    Produce(ProduceArgs),
    /// Print records; exits at the end of the log unless --follow.
    #[command(after_help = "Example:\n  eddy topic consume orders --from-beginning --format '%p:%o %k=%s\\n'")]
    Consume(ConsumeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    name: String,
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Kept for Kafka compatibility; the embedded log keeps one copy.
    #[arg(long, default_value_t = 1)]
    replication_factor: u16,
    /// A topic config as name=value (retention.ms, retention.bytes, segment.bytes, …).
    #[arg(long = "config", value_name = "NAME=VALUE")]
    configs: Vec<String>,
    /// Succeed quietly if the topic exists.
    #[arg(long)]
    if_not_exists: bool,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    name: String,
    /// Split each line at the first SEP: the text before is the key, after it the value.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Write every record to this partition (default: by key, round-robin without one).
    #[arg(long)]
    partition: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    name: String,
    /// Start at the earliest offset (default: the end, as Kafka's console consumer).
    #[arg(long, conflicts_with = "offset")]
    from_beginning: bool,
    /// Start at this offset (of each partition read).
    #[arg(long)]
    offset: Option<u64>,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<u32>,
    /// Stop after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Keep waiting for new records instead of exiting at the end of the log.
    #[arg(long)]
    follow: bool,
    /// kcat tokens: %t topic, %p partition, %o offset, %k key, %s value, %T timestamp,
    /// %h headers, %K/%S key/value length; escapes \n \t.
    #[arg(long, default_value = "%s\\n")]
    format: String,
}

pub async fn run(data_dir: &super::LogPlace, command: TopicCommand) -> Result<(), CliError> {
    let log: Arc<dyn Log> = data_dir.open().await?;
    match command {
        TopicCommand::Create(args) => create(log.as_ref(), args).await,
        TopicCommand::List => {
            for name in log.list_topics().await? {
                super::print_line(format_args!("{name}"))?;
            }
            Ok(())
        }
        TopicCommand::Describe { name } => describe(log.as_ref(), &name).await,
        TopicCommand::Delete { name } => Ok(log.delete_topic(&name).await?),
        TopicCommand::Produce(args) => produce(log, args).await,
        TopicCommand::Consume(args) => consume(log.as_ref(), args).await,
    }
}

async fn create(log: &dyn Log, args: CreateArgs) -> Result<(), CliError> {
    let configs = args.configs.iter().map(|pair| parse_config_pair(pair)).collect::<Result<BTreeMap<_, _>, _>>()?;
    let spec = TopicSpec { partitions: args.partitions, replication_factor: args.replication_factor, configs };
    match log.create_topic(&args.name, &spec).await {
        Err(LogError::TopicExists(_)) if args.if_not_exists => Ok(()),
        other => Ok(other?),
    }
}

async fn describe(log: &dyn Log, name: &str) -> Result<(), CliError> {
    let topic = log.describe_topic(name).await?;
    let configs: Vec<String> = topic.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut out = std::io::stdout().lock();
    let result = (|| {
        writeln!(
            out,
            "Topic: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
            topic.name,
            topic.partitions.len(),
            topic.replication_factor,
            configs.join(",")
        )?;
        for p in &topic.partitions {
            write!(
                out,
                "\tTopic: {}\tPartition: {}\tEarliestOffset: {}\tLatestOffset: {}",
                topic.name, p.partition, p.earliest_offset, p.latest_offset
            )?;
            if let Some(size) = p.size_bytes {
                write!(out, "\tSizeBytes: {size}")?;
            }
            writeln!(out)?;
        }
        Ok(())
    })();
    result.or_else(finish_output)
}

async fn produce(log: Arc<dyn Log>, args: ProduceArgs) -> Result<(), CliError> {
    if args.key_separator.as_deref() == Some("") {
        return Err(CliError::User("--key-separator cannot be empty".into()));
    }
    let mut producer = Producer::new(log, &args.name).await?;
    if let Some(p) = args.partition {
        producer.check_partition(p)?;
    }
    let separator = args.key_separator.map(String::into_bytes);
    let mut input = BufReader::with_capacity(1024 * 1024, tokio::io::stdin());
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        line.clear();
        let read = tokio::select! {
            read = input.read_until(b'\n', &mut line) => read,
            _ = &mut ctrl_c => break,
        };
        let n = read.map_err(|e| CliError::Internal(format!("reading standard input: {e}")))?;
        if n == 0 {
            break;
        }
        line_number += 1;
        let text = strip_newline(&line);
        let (key, value) = match &separator {
            None => (None, text),
            Some(sep) => match find(text, sep) {
                Some(at) => (Some(Bytes::copy_from_slice(&text[..at])), &text[at + sep.len()..]),
                None => {
                    producer.flush().await?;
                    return Err(CliError::User(format!(
                        "line {line_number} has no key separator {:?}; records before it were written",
                        String::from_utf8_lossy(sep)
                    )));
                }
            },
        };
        let record = NewRecord::new(now_ms(), key, Some(Bytes::copy_from_slice(value)));
        producer.send(record, args.partition)?;
        // Append when the batch is full or no more input is waiting: large inputs go in
        // large batches, interactive lines at once.
        if producer.pending_records() >= PRODUCE_BATCH_RECORDS || input.buffer().is_empty() {
            producer.flush().await?;
        }
    }
    producer.flush().await?;
    Ok(())
}

fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One partition being consumed.
struct Cursor {
    partition: u32,
    position: u64,
    /// Where to stop without `--follow`: the log end when consuming began.
    end: u64,
}

async fn consume(log: &dyn Log, args: ConsumeArgs) -> Result<(), CliError> {
    let format = RecordFormat::parse(&args.format).map_err(CliError::User)?;
    let partition_count = log.partition_count(&args.name).await?;
    let partitions: Vec<u32> = match args.partition {
        Some(p) if p >= partition_count => {
            return Err(LogError::UnknownPartition { topic: args.name.clone(), partition: p, partition_count }.into());
        }
        Some(p) => vec![p],
        None => (0..partition_count).collect(),
    };
    let mut cursors = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let earliest = log.earliest_offset(&args.name, partition).await?;
        let end = log.latest_offset(&args.name, partition).await?;
        let position = match (args.offset, args.from_beginning) {
            (Some(offset), _) if offset < earliest || offset > end => {
                return Err(LogError::OffsetOutOfRange {
                    topic: args.name.clone(),
                    partition,
                    offset,
                    earliest,
                    latest: end,
                }
                .into());
            }
            (Some(offset), _) => offset,
            (None, true) => earliest,
            (None, false) => end,
        };
        cursors.push(Cursor { partition, position, end });
    }

    let mut remaining = args.max_messages.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while remaining > 0 {
        let mut progressed = false;
        for cursor in &mut cursors {
            if remaining == 0 || (!args.follow && cursor.position >= cursor.end) {
                continue;
            }
            let fetch = log.read(&args.name, cursor.partition, cursor.position, CONSUME_FETCH_BYTES).await?;
            for record in &fetch.records {
                if remaining == 0 || (!args.follow && record.offset >= cursor.end) {
                    break;
                }
                if let Err(e) = format.write(&mut out, &args.name, cursor.partition, record) {
                    return finish_output(e);
                }
                remaining -= 1;
                cursor.position = record.offset + 1;
                progressed = true;
            }
        }
        if let Err(e) = out.flush() {
            return finish_output(e);
        }
        if progressed || remaining == 0 {
            continue;
        }
        if !args.follow || cursors.is_empty() {
            break;
        }
        // Caught up: wait for any partition to grow, or for Ctrl-C.
        let positions: Vec<(u32, u64)> = cursors.iter().map(|c| (c.partition, c.position)).collect();
        tokio::select! {
            result = wait_for_any(log, &args.name, &positions, Duration::from_secs(5)) => result?,
            _ = &mut ctrl_c => break,
        }
    }
    out.flush().or_else(finish_output)
}

/// A closed standard output (`| head`) ends consumption quietly; other errors are reported.
fn finish_output(e: std::io::Error) -> Result<(), CliError> {
    if e.kind() == std::io::ErrorKind::BrokenPipe { Ok(()) } else { Err(output_error(e)) }
}

fn output_error(e: std::io::Error) -> CliError {
    CliError::Internal(format!("writing standard output: {e}"))
}
