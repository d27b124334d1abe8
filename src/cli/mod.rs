//! The `eddy` command line: flags as clap parses them, and the commands they run.
//!
//! `main.rs` only parses, sets up logging and a runtime, and maps [`CliError`] to an exit
//! code: 0 ok, 1 user error (bad input, unknown topic), 2 internal error.

pub mod bench;
pub mod format;
pub mod fuzz;
pub mod qtt;
pub mod remote;
pub mod repl;
pub mod run;
pub mod server;
pub mod test;
pub mod topic;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::log::LogError;
use bench::BenchCommand;

#[derive(Debug, Parser)]
#[command(
    name = "eddy",
    version,
    about = "A streaming SQL engine: ksqlDB's dialect, no JVM, no broker required",
    after_help = "Example:\n  printf 'alice:hi\\nbob:yo\\n' | eddy topic produce chat --key-separator :\n  eddy topic consume chat --from-beginning --format '%p %o %k=%s\\n'"
)]
pub struct Cli {
    /// Data directory of the embedded log.
    #[arg(long, global = true, env = "EDDY_DATA_DIR", default_value = "./eddy-data")]
    pub data_dir: PathBuf,

    /// Keep topics in this Kafka cluster (`HOST:PORT[,HOST:PORT…]`) instead of the data
    /// directory's embedded log.
    #[arg(long, global = true, env = "EDDY_KAFKA")]
    pub kafka: Option<String>,

    /// With --kafka: how produced record batches are compressed (none, gzip, lz4, snappy, zstd).
    #[arg(long, global = true, default_value = "none", env = "EDDY_KAFKA_COMPRESSION")]
    pub kafka_compression: String,

    /// Kafka client properties (a Java properties file: `bootstrap.servers`,
    /// `security.protocol`, `sasl.mechanism`, `sasl.jaas.config` or `sasl.username` and
    /// `sasl.password`, `ssl.ca.location`, …). Implies Kafka; `--kafka` overrides its brokers.
    #[arg(long, global = true, env = "EDDY_KAFKA_CONFIG")]
    pub kafka_config: Option<PathBuf>,

    /// Run the interactive shell against this server's REST API (`http://[user:password@]host:port`)
    /// instead of a data directory.
    #[arg(long, global = true, env = "EDDY_SERVER")]
    pub server: Option<String>,

    /// A property every session starts with, as `NAME=VALUE` (repeatable): Eddy's own
    /// (`eddy.checkpoint.interval.ms=200`; see `SHOW PROPERTIES`) are checked at once.
    #[arg(long = "property", global = true, value_name = "NAME=VALUE")]
    pub property: Vec<String>,

    /// Milliseconds between a persistent query's checkpoints (`eddy.checkpoint.interval.ms`).
    #[arg(long, global = true, env = "EDDY_CHECKPOINT_INTERVAL_MS", value_name = "MS")]
    pub checkpoint_interval_ms: Option<String>,

    /// Arm a fault point, to see a bug reported as one (debug builds only).
    #[cfg(debug_assertions)]
    #[arg(long, global = true, hide = true, value_name = "POINT")]
    pub inject_fault: Option<String>,

    /// What to do; without one, the interactive shell.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The interactive SQL shell (also what `eddy` alone opens).
    #[command(after_help = "Example:\n  eddy repl --data-dir ./eddy-data")]
    Repl,
    /// Create, list, describe, delete, produce to and consume from topics.
    #[command(subcommand, after_help = "Example:\n  eddy topic create orders --partitions 3\n  eddy topic list")]
    Topic(topic::TopicCommand),
    /// Execute the statements of a .sql file, or resume the data directory's persistent queries.
    #[command(
        after_help = "Example:\n  eddy run queries/pageviews.sql --until-idle\n  eddy run --data-dir ./eddy-data --until-idle"
    )]
    Run(run::RunArgs),
    /// Serve ksqlDB's REST API (HTTP/1.1 and HTTP/2 cleartext on one port).
    #[command(after_help = "Example:\n  eddy server --listen 127.0.0.1:8088 --queries-file queries/quickstart.sql")]
    Server(server::ServerArgs),
    /// Run one ksql-test-runner case: statements, input records, expected output records.
    #[command(after_help = "Example:\n  eddy test --statements statements.sql --input input.json --output output.json")]
    Test(test::TestArgs),
    /// Run ksqlDB's QTT conformance files: one PASS/FAIL/SKIP line per case, then the counts.
    #[command(after_help = "Example:\n  eddy qtt ../shared/qtt/query-validation-tests/project-filter.json")]
    Qtt(qtt::QttArgs),
    /// Fuzz the SQL parser, the JSON and DELIMITED decoders and the log's segment reader.
    #[command(after_help = "Example:\n  cargo run --release -- fuzz json --seconds 600")]
    Fuzz(fuzz::FuzzArgs),
    /// Benchmarks (never part of the tests).
    #[command(subcommand, after_help = "Example:\n  cargo run --release -- bench log --records 5000000")]
    Bench(BenchCommand),
}

/// An error for the user, with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: exit code 1.
    #[error("{0}")]
    User(String),
    /// A failure of Eddy or its storage: exit code 2.
    #[error("{0}")]
    Internal(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::User(_) => 1,
            CliError::Internal(_) => 2,
        }
    }
}

impl CliError {
    /// `message`, as the error of kind `kind` it reports.
    pub fn of_kind(kind: crate::error::ErrorKind, message: String) -> CliError {
        match kind {
            crate::error::ErrorKind::User => CliError::User(message),
            crate::error::ErrorKind::External | crate::error::ErrorKind::Internal => CliError::Internal(message),
        }
    }
}

impl From<LogError> for CliError {
    fn from(e: LogError) -> Self {
        if e.is_user_error() { CliError::User(e.to_string()) } else { CliError::Internal(e.to_string()) }
    }
}

impl From<crate::session::SessionError> for CliError {
    fn from(e: crate::session::SessionError) -> Self {
        CliError::of_kind(e.kind(), e.to_string())
    }
}

/// Writes a line to standard output. A closed pipe (`eddy … | head`) ends the program
/// quietly with success, as it ends other Unix tools; any other write error is reported.
pub fn print_line(line: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(CliError::Internal(format!("writing standard output: {e}"))),
    }
}

/// SIGINT (Ctrl-C) as a stream, installed at once: from here on Ctrl-C no longer kills the
/// process but is delivered to whoever awaits it.
pub fn interrupt_signal() -> Result<tokio::signal::unix::Signal, CliError> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| CliError::Internal(format!("cannot handle Ctrl-C: {e}")))
}

/// Where topics live (the embedded log in a data directory, or a Kafka cluster), and the
/// properties sessions over them start with.
#[derive(Debug, Clone)]
pub struct LogPlace {
    pub data_dir: PathBuf,
    pub kafka: Option<String>,
    pub kafka_compression: String,
    /// Kafka client properties (`--kafka-config`).
    pub kafka_config: Option<PathBuf>,
    /// The command line's properties (`--property`, and those read from the environment).
    pub properties: BTreeMap<String, String>,
}

impl LogPlace {
    pub async fn open(&self) -> Result<std::sync::Arc<dyn crate::log::Log>, CliError> {
        let config = match (&self.kafka_config, &self.kafka) {
            (Some(file), brokers) => crate::log::KafkaConfig::from_file(file, brokers.as_deref())?,
            (None, Some(brokers)) => crate::log::KafkaConfig::new(brokers),
            (None, None) => return Ok(std::sync::Arc::new(crate::log::EmbeddedLog::open(&self.data_dir)?)),
        };
        Ok(std::sync::Arc::new(crate::log::KafkaLog::open(config, &self.kafka_compression).await?))
    }

    /// A session over `log` with the command line's properties.
    pub async fn session(
        &self,
        log: std::sync::Arc<dyn crate::log::Log>,
    ) -> Result<crate::session::Session, crate::session::SessionError> {
        self.session_with(log, None).await
    }

    /// A session over `log` whose formats use the registry at `ksql.schema.registry.url`,
    /// else `embedded` (else the embedded registry opened over `log`).
    pub async fn session_with(
        &self,
        log: std::sync::Arc<dyn crate::log::Log>,
        embedded: Option<crate::registry::client::Embedded>,
    ) -> Result<crate::session::Session, crate::session::SessionError> {
        let registry: crate::registry::client::RegistryRef = match embedded {
            Some(embedded) if !self.properties.contains_key("ksql.schema.registry.url") => {
                std::sync::Arc::new(embedded)
            }
            _ => crate::registry::client::for_properties(std::sync::Arc::clone(&log), &self.properties)
                .await
                .map_err(crate::session::SessionError::registry)?,
        };
        let formats = crate::format::Formats::with_registry(registry);
        crate::session::Session::open_with(log, self.properties.clone(), formats).await
    }

    pub fn display(&self) -> String {
        match (&self.kafka, &self.kafka_config) {
            (Some(brokers), _) => format!("Kafka at {brokers}"),
            (None, Some(file)) => format!("Kafka as {} says", file.display()),
            (None, None) => self.data_dir.display().to_string(),
        }
    }
}

/// The properties given on the command line, each checked: the environment's first, then
/// `--property`'s in order.
fn properties(cli: &Cli) -> Result<BTreeMap<String, String>, CliError> {
    let mut properties = BTreeMap::new();
    if let Some(ms) = &cli.checkpoint_interval_ms {
        crate::config::check(crate::config::CHECKPOINT_INTERVAL, ms).map_err(|e| CliError::User(e.0))?;
        properties.insert(crate::config::CHECKPOINT_INTERVAL.to_string(), ms.clone());
    }
    for assignment in &cli.property {
        let (name, value) = crate::config::parse_assignment(assignment).map_err(|e| CliError::User(e.0))?;
        properties.insert(name, value);
    }
    Ok(properties)
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    #[cfg(debug_assertions)]
    if let Some(point) = &cli.inject_fault {
        crate::error::arm_fault(point).map_err(CliError::User)?;
    }
    let place = LogPlace {
        data_dir: cli.data_dir.clone(),
        kafka: cli.kafka.clone(),
        kafka_compression: cli.kafka_compression.clone(),
        kafka_config: cli.kafka_config.clone(),
        properties: properties(&cli)?,
    };
    let data_dir = &place;
    match cli.command {
        None | Some(Command::Repl) => repl::run(data_dir, cli.server.as_deref()).await,
        Some(Command::Topic(command)) => topic::run(data_dir, command).await,
        Some(Command::Run(args)) => run::run(data_dir, args).await,
        Some(Command::Server(args)) => server::run(data_dir, args).await,
        Some(Command::Qtt(args)) => qtt::run(args).await,
        Some(Command::Fuzz(args)) => fuzz::fuzz(args).await,
        Some(Command::Test(args)) => test::run(args).await,
        Some(Command::Bench(command)) => bench::run(command).await,
    }
}

#[cfg(test)]
mod tests {
    /// clap checks a command line's definition only when it is used: every subcommand's
    /// flags against the global ones, here once for all.
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
