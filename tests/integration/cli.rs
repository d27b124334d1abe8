//! `eddy topic` end to end: the real binary, real processes, a shared data directory.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use eddy::log::partitioner::partition_for_key;
use eddy::log::{EmbeddedLog, Log};

pub fn eddy(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eddy"));
    command.arg("--data-dir").arg(dir).env_remove("EDDY_DATA_DIR").env_remove("EDDY_LOG");
    command
}

/// Runs `eddy` to completion; one that hangs is killed and fails the test, never hangs it.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    let child = eddy(dir).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_with_deadline(child, Duration::from_secs(120))
}

pub fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(out.status.success(), "eddy {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn produce(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = eddy(dir)
        .args(["topic", "produce"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Waits for a child with a deadline; a test never hangs on a stuck process.
/// Its output is drained on threads meanwhile, so a child writing more than a pipe holds
/// never blocks.
fn wait_with_deadline(mut child: Child, deadline: Duration) -> Output {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() };
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            panic!("process still running after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Expects a one-line error and exit code 1, never a panic.
fn assert_user_error(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    assert!(stderr.contains(expected), "stderr {stderr:?} should mention {expected:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"));
}

/// The issue's acceptance test: 20,000 keyed records come back complete, in per-key order,
/// each on the partition Kafka's partitioner picks.
#[test]
fn keyed_records_round_trip_on_kafkas_partitions() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(dir.path(), &["topic", "create", "orders", "--partitions", "6"]);
    let mut input = String::new();
    for i in 0..20_000 {
        input.push_str(&format!("user-{}:order-{i}\n", (i * 7919) % 997));
    }
    let out = produce(dir.path(), &["orders", "--key-separator", ":"], input.as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let printed =
        run_ok(dir.path(), &["topic", "consume", "orders", "--from-beginning", "--format", "%p\\t%o\\t%k\\t%s\\n"]);
    let mut per_key: HashMap<String, Vec<u32>> = HashMap::new();
    let mut next_offset = [0u64; 6];
    let mut count = 0;
    for line in printed.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let (partition, offset, key, value) =
            (fields[0].parse::<u32>().unwrap(), fields[1].parse::<u64>().unwrap(), fields[2], fields[3]);
        assert_eq!(partition, partition_for_key(key.as_bytes(), 6), "partition of {key}");
        assert_eq!(offset, next_offset[partition as usize], "offsets are contiguous");
        next_offset[partition as usize] += 1;
        let n: u32 = value.strip_prefix("order-").unwrap().parse().unwrap();
        per_key.entry(key.to_owned()).or_default().push(n);
        count += 1;
    }
    assert_eq!(count, 20_000);
    assert_eq!(per_key.len(), 997);
    for (key, numbers) in &per_key {
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "records of {key} are in order");
    }
    assert!(next_offset.iter().all(|n| *n > 0), "every partition got records");
}

/// `--data-dir`, else `$EDDY_DATA_DIR`, else `./eddy-data`.
#[test]
fn the_data_directory_comes_from_the_flag_the_environment_or_the_default() {
    let work = tempfile::tempdir().unwrap();
    let from_env = work.path().join("from-env");
    let status = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["topic", "create", "a"])
        .env("EDDY_DATA_DIR", &from_env)
        .current_dir(work.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(from_env.join("topics/a/topic.json").exists());
    let status = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["topic", "create", "b"])
        .env_remove("EDDY_DATA_DIR")
        .current_dir(work.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(work.path().join("eddy-data/topics/b/topic.json").exists());
    let flag = work.path().join("from-flag");
    let status = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .arg("--data-dir")
        .arg(&flag)
        .args(["topic", "create", "c"])
        .env("EDDY_DATA_DIR", &from_env)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(flag.join("topics/c/topic.json").exists(), "the flag wins over the environment");
}

#[test]
fn topic_admin_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(
        d,
        &[
            "topic",
            "create",
            "a",
            "--partitions",
            "2",
            "--config",
            "retention.ms=1000",
            "--config",
            "segment.bytes=4096",
        ],
    );
    run_ok(d, &["topic", "create", "b"]);
    run_ok(d, &["topic", "create", "b", "--if-not-exists"]);
    assert_eq!(run_ok(d, &["topic", "list"]), "a\nb\n");
    produce(d, &["a", "--partition", "1"], b"x\ny\n");
    let described = run_ok(d, &["topic", "describe", "a"]);
    assert!(described.starts_with("Topic: a\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: "), "{described}");
    assert!(described.contains("retention.ms=1000") && described.contains("segment.bytes=4096"), "{described}");
    assert!(described.contains("Partition: 1\tEarliestOffset: 0\tLatestOffset: 2"), "{described}");
    assert!(described.contains("Partition: 0\tEarliestOffset: 0\tLatestOffset: 0"), "{described}");
    run_ok(d, &["topic", "delete", "a"]);
    assert_eq!(run_ok(d, &["topic", "list"]), "b\n");
}

#[test]
fn consume_options() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["topic", "create", "t"]);
    produce(d, &["t"], b"zero\none\n\ntwo\r\nthree\n");
    assert_eq!(run_ok(d, &["topic", "consume", "t", "--from-beginning"]), "zero\none\n\ntwo\nthree\n");
    assert_eq!(run_ok(d, &["topic", "consume", "t"]), "", "the default start is the end, as Kafka's");
    assert_eq!(run_ok(d, &["topic", "consume", "t", "--offset", "3", "--format", "%o:%s|"]), "3:two|4:three|");
    assert_eq!(run_ok(d, &["topic", "consume", "t", "--from-beginning", "--max-messages", "2"]), "zero\none\n");
    assert_eq!(
        run_ok(d, &["topic", "consume", "t", "--from-beginning", "--format", "%k %K %S\\n", "--max-messages", "1"]),
        "null -1 4\n"
    );
}

#[test]
fn bad_input_gets_one_line_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["topic", "create", "t", "--partitions", "2"]);
    assert_user_error(&run(d, &["topic", "consume", "nope"]), "topic 'nope' does not exist");
    assert_user_error(&run(d, &["topic", "describe", "nope"]), "does not exist");
    assert_user_error(&run(d, &["topic", "delete", "nope"]), "does not exist");
    assert_user_error(&run(d, &["topic", "consume", "t", "--partition", "2"]), "has no partition 2");
    assert_user_error(&run(d, &["topic", "consume", "t", "--offset", "5"]), "out of range");
    assert_user_error(&run(d, &["topic", "consume", "t", "--format", "%q"]), "%q");
    assert_user_error(&run(d, &["topic", "create", "t"]), "already exists");
    assert_user_error(&run(d, &["topic", "create", "u", "--config", "retention.ms=soon"]), "retention.ms");
    assert_user_error(&run(d, &["topic", "create", "u", "--config", "nonsense"]), "name=value");
    assert_user_error(&run(d, &["topic", "create", "u", "--partitions", "0"]), "partitions");
    assert_user_error(&run(d, &["topic", "create", "a/b"]), "invalid topic name");
    assert_user_error(&produce(d, &["nope"], b"x\n"), "does not exist");
    assert_user_error(&produce(d, &["t", "--partition", "9"], b"x\n"), "has no partition 9");
    assert_user_error(&produce(d, &["t", "--key-separator", ":"], b"k:v\nno separator\n"), "line 2");
    assert_eq!(run(d, &["topic", "bogus"]).status.code(), Some(1));
    assert_eq!(run(d, &["topic", "create", "--help"]).status.code(), Some(0));
}

/// Regression: `eddy … | head` used to panic writing to the closed pipe.
#[test]
fn a_closed_stdout_ends_commands_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["topic", "create", "t"]);
    let lines: String = (0..50_000).map(|i| format!("line-{i}\n")).collect();
    produce(d, &["t"], lines.as_bytes());
    for args in [
        vec!["topic", "consume", "t", "--from-beginning"],
        vec!["topic", "describe", "t"],
        vec!["topic", "list"],
        vec!["bench", "log", "--records", "2000", "--wake-rounds", "3"],
    ] {
        let mut child = eddy(d).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // the reader is gone before anything is written
        let out = wait_with_deadline(child, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "eddy {args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "eddy {args:?}: {stderr}");
    }
}

/// Two producer processes appending to one partition at once: every record arrives, offsets
/// are contiguous, each producer's records keep their order.
#[test]
fn two_producer_processes_share_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["topic", "create", "t"]);
    let children: Vec<Child> = ["a", "b"]
        .iter()
        .map(|name| {
            let mut child =
                eddy(d).args(["topic", "produce", "t"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let lines: String = (0..20_000).map(|i| format!("{name}-{i}\n")).collect();
            std::thread::spawn(move || {
                // Write in small pieces so that both producers are appending at once.
                for piece in lines.as_bytes().chunks(4096) {
                    stdin.write_all(piece).unwrap();
                }
            });
            child
        })
        .collect();
    for child in children {
        let out = wait_with_deadline(child, Duration::from_secs(120));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let printed = run_ok(d, &["topic", "consume", "t", "--from-beginning", "--format", "%o %s\\n"]);
    let mut last: HashMap<&str, i64> = HashMap::from([("a", -1), ("b", -1)]);
    for (i, line) in printed.lines().enumerate() {
        let (offset, value) = line.split_once(' ').unwrap();
        assert_eq!(offset.parse::<usize>().unwrap(), i);
        let (name, n) = value.split_once('-').unwrap();
        let n: i64 = n.parse().unwrap();
        let previous = last.get_mut(name).unwrap();
        assert_eq!(n, *previous + 1, "{name}'s records in order");
        *previous = n;
    }
    assert_eq!(last, HashMap::from([("a", 19_999), ("b", 19_999)]));
}

/// A consumer following a topic sees each record another process produces, one at a time.
#[test]
fn a_following_consumer_sees_another_process_produce() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["topic", "create", "t"]);
    let mut consumer = eddy(d)
        .args(["topic", "consume", "t", "--follow", "--offset", "0", "--max-messages", "3", "--format", "%o=%s\\n"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(consumer.stdout.take().unwrap()).lines();
    // A watchdog: if the follower never prints, it is killed and the reads below end.
    let pid = consumer.id();
    let (done, watchdog_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if watchdog_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    for (i, value) in ["a", "b", "c"].iter().enumerate() {
        assert!(produce(d, &["t"], format!("{value}\n").as_bytes()).status.success());
        let line = lines.next().expect("the follower printed the record").unwrap();
        assert_eq!(line, format!("{i}={value}"));
    }
    let status = consumer.wait().unwrap();
    let _ = done.send(());
    watchdog.join().unwrap();
    assert!(status.success(), "the follower exits after --max-messages");
}

/// `kill -9` in the middle of a large produce leaves a log that reopens, serves a clean
/// prefix with contiguous offsets, and accepts new appends.
#[test]
fn kill_9_during_a_large_produce_leaves_a_clean_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["topic", "create", "t", "--config", "segment.bytes=1048576"]);
    let mut child =
        eddy(d).args(["topic", "produce", "t"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for chunk in 0..200u64 {
            let lines: String =
                (chunk * 10_000..(chunk + 1) * 10_000).map(|i| format!("record-{i:09}-{}\n", "x".repeat(40))).collect();
            if stdin.write_all(lines.as_bytes()).is_err() {
                return; // the producer was killed
            }
        }
    });
    // Kill once a good part of the input is in the log.
    let log = EmbeddedLog::open(d).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reached = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if log.latest_offset("t", 0).await.unwrap() >= 150_000 {
                return true;
            }
            log.wait_for_data("t", 0, 150_000, Duration::from_millis(200)).await.unwrap();
        }
        false
    });
    child.kill().unwrap(); // SIGKILL
    let out = child.wait_with_output().unwrap();
    assert!(reached, "the producer wrote 150,000 records; it said: {}", String::from_utf8_lossy(&out.stderr));
    feeder.join().unwrap();
    drop(log);

    let printed = run_ok(d, &["topic", "consume", "t", "--from-beginning", "--format", "%o %s\\n"]);
    let mut count = 0u64;
    for line in printed.lines() {
        let (offset, value) = line.split_once(' ').unwrap();
        assert_eq!(offset.parse::<u64>().unwrap(), count);
        assert_eq!(value, format!("record-{count:09}-{}", "x".repeat(40)));
        count += 1;
    }
    assert!((150_000..2_000_000).contains(&count), "a prefix of {count} records");
    produce(d, &["t"], b"after-the-crash\n");
    let tail = run_ok(d, &["topic", "consume", "t", "--offset", &count.to_string(), "--format", "%o %s\\n"]);
    assert_eq!(tail, format!("{count} after-the-crash\n"));
}

/// `eddy run` prints each statement's result; a failure names the file, line and column,
/// exits with 1, and the catalog built so far persists for the next run.
#[test]
fn eddy_run_executes_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = d.join("first.sql");
    std::fs::write(
        &first,
        "-- pipeline\nCREATE STREAM pv (id STRING KEY, page STRING)\n  WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON', PARTITIONS=2);\nSHOW STREAMS;\n",
    )
    .unwrap();
    let out = run_ok(d, &["run", first.to_str().unwrap(), "--until-idle"]);
    assert!(out.starts_with(" Stream created\n"), "{out}");
    assert!(out.contains(" PV          | pv          | KAFKA      | JSON"), "{out}");

    let second = d.join("second.sql");
    std::fs::write(&second, "SHOW STREAMS;\nDESCRIBE pv;\n\nCREATE STREAM out AS SELECT id, nope FROM pv;\n").unwrap();
    let result = run(d, &["run", second.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stdout.contains("PV") && stdout.contains("(key)"), "the catalog came back: {stdout}");
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    let expected = format!("error: {}:4:1: ", second.display());
    assert!(stderr.contains("NOPE"), "{stderr}");
    assert!(stderr.starts_with(&expected), "{stderr}");

    let missing = run(d, &["run", "/no/such/file.sql"]);
    assert_user_error(&missing, "cannot read");
}

/// The REPL, fed through a pipe: multi-line statements run at their `;`, an error is
/// reported and the session goes on, `exit` leaves, and the history is saved.
#[test]
fn the_repl_runs_statements_and_survives_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut child = eddy(&d.join("data"))
        .env("HOME", d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"CREATE STREAM s (a INT)\n  WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);\n\
              this is not sql;\nSHOW STREAMS;\nexit\nSHOW TOPICS;\n",
        )
        .unwrap();
    let out = wait_with_deadline(child, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(" Stream created\n"), "{stdout}");
    assert!(stdout.contains(" S           | s"), "the statement after the error ran: {stdout}");
    assert!(!stdout.contains("Kafka Topic | Partitions"), "nothing runs after exit: {stdout}");
    assert!(stderr.contains("error: line 1:1: Syntax Error\nExpected: an SQL statement, found: this"), "{stderr}");
    let history = std::fs::read_to_string(d.join(".eddy_history")).unwrap();
    assert!(history.contains("SHOW STREAMS;"), "{history}");
}

/// Ctrl-C (SIGINT) stops `eddy run` gracefully while a PRINT follows its topic.
#[test]
fn eddy_run_stops_on_ctrl_c() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_ok(d, &["topic", "create", "t"]);
    produce(d, &["t", "--key-separator", ":"], b"k:hello\n");
    let script = d.join("print.sql");
    std::fs::write(&script, "PRINT t FROM BEGINNING;\nSHOW TOPICS;\n").unwrap();
    let mut child = eddy(d).args(["run", script.to_str().unwrap()]).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.ends_with("key: k, value: hello, partition: 0"), "{first}");
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(rest.is_empty(), "nothing after the cancelled statement ran: {rest:?}");

    // With --until-idle, PRINT stops at the end of the topic and the script goes on.
    let out = run_ok(d, &["run", script.to_str().unwrap(), "--until-idle"]);
    assert!(out.contains("value: hello") && out.contains("Kafka Topic"), "{out}");
}

/// Every example in `queries/` runs on a fresh data directory (but those that say they
/// require a server outside: their own tests run them against one).
#[test]
fn the_example_queries_run() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut ran = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        let outside = std::fs::read_to_string(&path).is_ok_and(|text| text.contains("\n-- requires: "));
        if path.extension().is_some_and(|e| e == "sql") && !outside {
            let dir = tempfile::tempdir().unwrap();
            let out = run(dir.path(), &["run", path.to_str().unwrap(), "--until-idle"]);
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            ran += 1;
        }
    }
    assert!(ran > 0, "queries/ has SQL examples");
}

/// `eddy run` keeps its persistent queries running until Ctrl-C, then stops them gracefully
/// (flushed and committed), and a second run resumes where the first stopped.
#[test]
fn eddy_run_runs_persistent_queries_until_ctrl_c_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pipeline = d.join("pipeline.sql");
    std::fs::write(
        &pipeline,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM IF NOT EXISTS pv (id STRING KEY, page STRING) WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON', PARTITIONS=2);
         INSERT INTO pv (id, page) VALUES ('a', '/x');
         CREATE STREAM IF NOT EXISTS pages AS SELECT id, UCASE(page) AS page FROM pv;",
    )
    .unwrap();
    let child = eddy(d)
        .args(["run", pipeline.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (with a deadline) for the query's output, then interrupt.
    let started = Instant::now();
    let sink_records = |d: &Path| -> u64 {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let log = EmbeddedLog::open(d).unwrap();
            match log.describe_topic("PAGES").await {
                Ok(topic) => topic.partitions.iter().map(|p| p.latest_offset).sum(),
                Err(_) => 0,
            }
        })
    };
    while sink_records(d) < 1 {
        assert!(started.elapsed() < Duration::from_secs(60), "the query wrote nothing");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = wait_with_deadline(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Created query with ID CSAS_PAGES_"));

    // The second run inserts one more row; the query resumes and writes only that one.
    let out = run(d, &["run", pipeline.to_str().unwrap(), "--until-idle"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sink_records(d), 2);
}

/// `eddy test` and `eddy qtt` report as ksqlDB's tools do, with exit codes.
#[test]
fn eddy_test_and_eddy_qtt_report_cases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.sql"),
        "CREATE STREAM t (id INT KEY, v STRING) WITH (kafka_topic='t', value_format='JSON');
         CREATE STREAM o AS SELECT id, v FROM t WHERE id > 1;",
    )
    .unwrap();
    std::fs::write(
        d.join("i.json"),
        r#"{"inputs": [{"topic": "t", "key": 1, "value": {"v": "a"}}, {"topic": "t", "key": 2, "value": {"v": "b"}}]}"#,
    )
    .unwrap();
    std::fs::write(d.join("o.json"), r#"{"outputs": [{"topic": "O", "key": 2, "value": {"V": "b"}}]}"#).unwrap();
    std::fs::write(d.join("wrong.json"), r#"{"outputs": [{"topic": "O", "key": 1, "value": {"V": "a"}}]}"#).unwrap();
    let path = |name: &str| d.join(name).to_str().unwrap().to_owned();
    let passed =
        run(d, &["test", "--statements", &path("s.sql"), "--input", &path("i.json"), "--output", &path("o.json")]);
    assert!(passed.status.success());
    assert_eq!(String::from_utf8_lossy(&passed.stdout), ">>> Test passed!\n");
    let failed = run(d, &["test", "-s", &path("s.sql"), "-i", &path("i.json"), "-o", &path("wrong.json")]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stdout).starts_with(">>> Test failed: topic O record 0"));

    let qtt = crate::conformance::shared_qtt().join("query-validation-tests/between.json");
    let out = run(d, &["qtt", qtt.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().all(|l| l.starts_with("PASS ")
            || l.starts_with("FAIL ")
            || l.starts_with("SKIP ")
            || l.contains(" passed, ")),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("9 passed, 0 failed, 0 skipped"), "{stdout}");
}

/// The command line's properties are checked before anything runs: a bad value of one of
/// Eddy's, from `--property` or from the environment, is a user error naming the property.
#[test]
fn properties_on_the_command_line_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["--property", "eddy.source.linger.ms=later", "topic", "list"]);
    assert_user_error(&out, "Invalid value later for configuration eddy.source.linger.ms");
    assert_user_error(&run(d, &["--property", "eddy.lingr=1", "topic", "list"]), "Unknown property eddy.lingr");
    assert_user_error(&run(d, &["--property", "eddy.source.linger.ms", "topic", "list"]), "is not NAME=VALUE");
    let child = eddy(d)
        .env("EDDY_CHECKPOINT_INTERVAL_MS", "-5")
        .args(["topic", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_user_error(&wait_with_deadline(child, Duration::from_secs(60)), "eddy.checkpoint.interval.ms");

    let script = d.join("show.sql");
    std::fs::write(&script, "SHOW PROPERTIES;\n").unwrap();
    let shown = run_ok(d, &["--property", "eddy.state.ttl.ms=60000", "run", script.to_str().unwrap()]);
    assert!(shown.lines().any(|l| l.contains("eddy.state.ttl.ms") && l.contains("60000")), "{shown}");
}

/// A bug is reported as one: a panic forced inside planning (a debug build's fault point)
/// ends `eddy run` with exit code 2 and "this is a bug" at the statement, where a mistake in
/// the SQL ends it with 1.
#[test]
fn a_panic_in_planning_is_reported_as_a_bug() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = d.join("query.sql");
    std::fs::write(
        &script,
        "CREATE STREAM s (id INT KEY, v INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);\n\
         CREATE STREAM t AS SELECT id, v + 1 AS w FROM s;\n",
    )
    .unwrap();
    let script = script.to_str().unwrap();
    let out = run(d, &["--inject-fault", "panic-in-planning", "run", script]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "stderr: {stderr}");
    assert!(
        last.contains("query.sql:2:1: internal error (this is a bug): fault injected at panic-in-planning"),
        "{stderr}"
    );

    // The same statement planned without the fault runs; a wrong one is the user's.
    let other = tempfile::tempdir().unwrap();
    run_ok(other.path(), &["run", script, "--until-idle"]);
    std::fs::write(d.join("wrong.sql"), "CREATE STREAM u AS SELECT nope FROM s;\n").unwrap();
    let out = run(other.path(), &["run", d.join("wrong.sql").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}
