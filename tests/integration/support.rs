//! What the integration tests share: a session over an embedded log in a directory, running
//! scripts, and reading a topic's records back.

use std::sync::Arc;

use eddy::log::{EmbeddedLog, Log, Record};
use eddy::session::{Session, SessionError, StatementResult};

/// A session over the embedded log in `dir`, whose push queries stop once caught up.
pub async fn session(dir: &std::path::Path) -> (Arc<dyn Log>, Session) {
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir).unwrap());
    let mut session = Session::open(Arc::clone(&log)).await.unwrap();
    session.set_until_idle(true);
    (log, session)
}

/// Runs a script; returns every result's text, or the error.
pub async fn run(session: &mut Session, script: &str) -> Result<Vec<String>, SessionError> {
    let mut out = Vec::new();
    session.execute(script, &mut |r: StatementResult| out.extend(texts(&r))).await?;
    Ok(out)
}

/// A result as the command line shows it; a push query's header and rows line by line.
pub fn texts(result: &StatementResult) -> Vec<String> {
    match result {
        StatementResult::Header(_) => result.to_string().lines().map(|l| format!("{l}\n")).collect(),
        StatementResult::Rows(rows) if rows.header.push => {
            result.to_string().lines().map(|l| format!("{l}\n")).collect()
        }
        other => vec![other.to_string()],
    }
}

/// Every record of a topic, partition by partition.
pub async fn records(log: &dyn Log, topic: &str) -> Vec<Record> {
    let mut all = Vec::new();
    for partition in 0..log.partition_count(topic).await.unwrap() {
        all.extend(log.read(topic, partition, 0, usize::MAX / 2).await.unwrap().records);
    }
    all
}

/// A key or value as text, `<null>` for none.
pub fn text(bytes: &Option<bytes::Bytes>) -> String {
    bytes.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_else(|| "<null>".into())
}

/// A push query's rows in the command line's output: the cells of each `|…|` line after the
/// header.
pub fn push_rows(out: &[String]) -> Vec<Vec<&str>> {
    out.iter()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect())
        .collect()
}

/// A throwaway PostgreSQL cluster (Debian's `postgresql`): made with `initdb` in a temporary
/// directory and run with `pg_ctl` on a free port, as the `postgres` user when this runs as
/// root; stopped and removed when dropped. Its superuser is `eddy`, trusted on 127.0.0.1.
pub struct Postgres {
    pub port: u16,
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    as_postgres: bool,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.filter_map(Result::ok).map(|v| v.path().join("bin")).max())
            .filter(|bin| bin.join("initdb").exists())
            .expect("PostgreSQL's initdb, from Debian's postgresql package (./scripts/test.sh installs it)");
        let as_postgres = is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            let status = std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            assert!(status.unwrap().success(), "chown for the postgres user");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let postgres = Postgres { port, bin, dir, as_postgres };
        let data = postgres.data();
        postgres.run("initdb", &["-D", &data, "-U", "eddy", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        postgres.pg_ctl("start");
        postgres
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// One of PostgreSQL's programs, run as the `postgres` user when this runs as root.
    fn command(&self, program: &str) -> std::process::Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            std::process::Command::new(&program)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `pg_ctl start` (waiting until it takes connections) or `pg_ctl stop` (fast).
    pub fn pg_ctl(&self, action: &str) {
        let data = self.data();
        let socket_dir = self.dir.path().display().to_string();
        let options = format!("-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off", self.port);
        let log = self.dir.path().join("log").display().to_string();
        match action {
            "start" => self.run("pg_ctl", &["-D", &data, "-o", &options, "-l", &log, "-w", "start"]),
            _ => self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]),
        }
    }

    /// The JDBC URL of its `postgres` database.
    pub fn jdbc_url(&self) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/postgres?user=eddy", self.port)
    }

    /// A client of its `postgres` database.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={} user=eddy dbname=postgres", self.port),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.command("pg_ctl").args(["-D", &data, "-m", "immediate", "stop"]).output();
    }
}

/// Whether this process runs as root (initdb refuses to).
fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}
