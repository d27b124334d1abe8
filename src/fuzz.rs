//! Fuzzing what takes hostile input: the SQL parser, the JSON and DELIMITED decoders, and the
//! embedded log's segment reader. Each target mutates seed inputs (bit flips, byte and token
//! insertions, deletions, duplications, splices of two inputs) and runs each result under
//! `catch_unwind`: a panic is a failure, reported with the input that caused it. Beyond not
//! panicking, each target checks what must hold whatever the input (a decoder accounts for
//! every record; a segment reads back as contiguous offsets).
//!
//! `eddy fuzz TARGET --seconds N` runs one for longer; the test suite runs each for a bounded
//! number of inputs. Runs are reproducible: the same seed gives the same inputs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::catalog::{Catalog, Source};
use crate::log::{EmbeddedLog, Log, NewRecord, Record, TopicSpec};
use crate::sql::ast::Statement;

/// What can be fuzzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Sql,
    Json,
    Delimited,
    Segment,
}

impl Target {
    pub const ALL: [Target; 4] = [Target::Sql, Target::Json, Target::Delimited, Target::Segment];

    pub fn name(self) -> &'static str {
        match self {
            Target::Sql => "sql",
            Target::Json => "json",
            Target::Delimited => "delimited",
            Target::Segment => "segment",
        }
    }
}

/// How long a run lasts: whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub inputs: u64,
    pub time: Duration,
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    pub target: Target,
    pub inputs: u64,
    pub elapsed: Duration,
    /// The first failure: the input, and the panic or broken property.
    pub failure: Option<(Vec<u8>, String)>,
}

/// A small, fast, seedable generator (SplitMix64): runs repeat exactly for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Inputs grow up to this many bytes.
const MAX_INPUT: usize = 4096;

/// One mutation of `input`: `dictionary` holds tokens worth inserting, `seeds` inputs to
/// splice with.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, dictionary: &[&[u8]], seeds: &[Vec<u8>]) {
    let at = |rng: &mut Rng, input: &Vec<u8>| rng.below(input.len() + 1);
    match rng.below(8) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] = rng.next() as u8;
        }
        2 => {
            let i = at(rng, input);
            let token = dictionary[rng.below(dictionary.len())];
            input.splice(i..i, token.iter().copied());
        }
        3 if !input.is_empty() => {
            let i = rng.below(input.len());
            let n = rng.below((input.len() - i).min(32)) + 1;
            input.drain(i..i + n);
        }
        4 if !input.is_empty() => {
            let i = rng.below(input.len());
            let n = rng.below((input.len() - i).min(64)) + 1;
            let copy: Vec<u8> = input[i..i + n].to_vec();
            let j = at(rng, input);
            input.splice(j..j, copy);
        }
        5 if !seeds.is_empty() => {
            let other = &seeds[rng.below(seeds.len())];
            let cut = at(rng, input);
            let from = rng.below(other.len() + 1);
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        6 => {
            let i = at(rng, input);
            let interesting: [&[u8]; 8] =
                [b"\0", b"\xff", b"\xc3", b"-1", b"9223372036854775808", b"1e999", b"NaN", b"\""];
            input.splice(i..i, interesting[rng.below(interesting.len())].iter().copied());
        }
        _ if !input.is_empty() => {
            let i = rng.below(input.len());
            input.truncate(i);
        }
        _ => input.push(rng.next() as u8),
    }
    input.truncate(MAX_INPUT);
}

/// Runs `target` from `seed` within `budget`.
pub fn run(target: Target, seed: u64, budget: Budget) -> Report {
    let started = Instant::now();
    let mut harness = match Harness::new(target) {
        Ok(harness) => harness,
        Err(e) => {
            return Report { target, inputs: 0, elapsed: started.elapsed(), failure: Some((Vec::new(), e)) };
        }
    };
    let mut rng = Rng(seed);
    let seeds = harness.seeds();
    let mut inputs = 0;
    let mut failure = None;
    while inputs < budget.inputs && started.elapsed() < budget.time {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(8) {
            mutate(&mut rng, &mut input, harness.dictionary(), &seeds);
        }
        inputs += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| harness.check(&input)));
        let problem = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(broken)) => broken,
            Err(panic) => {
                format!("panicked: {}", crate::error::panic_message(panic.as_ref()))
            }
        };
        failure = Some((input, problem));
        break;
    }
    Report { target, inputs, elapsed: started.elapsed(), failure }
}

/// A target's state between inputs.
enum Harness {
    Sql,
    Decoder { source: Arc<Source>, schema: datafusion::arrow::datatypes::SchemaRef, seeds: Vec<Vec<u8>> },
    Segment { dir: tempfile::TempDir, segment: std::path::PathBuf, seed: Vec<u8>, runtime: tokio::runtime::Runtime },
}

const SQL_SEEDS: [&str; 10] = [
    include_str!("../queries/quickstart.sql"),
    include_str!("../queries/pageviews.sql"),
    include_str!("../queries/pageviews-per-minute.sql"),
    include_str!("../queries/pageview-enrichment.sql"),
    include_str!("../queries/orders-shipments.sql"),
    include_str!("../queries/user-sessions.sql"),
    include_str!("../queries/moving-average.sql"),
    include_str!("../queries/average-across-producers.sql"),
    "CREATE TABLE t (id INT PRIMARY KEY, m MAP<STRING, ARRAY<STRUCT<a DECIMAL(4,2), `b` BYTES>>>) \
     WITH (KAFKA_TOPIC='t', FORMAT='JSON', WINDOW_TYPE='HOPPING', WINDOW_SIZE='5 SECONDS');",
    "SELECT a, CASE WHEN b > 1 THEN 'x' ELSE NULL END, CAST(c AS DOUBLE), EXPLODE(d)[1]->e \
     FROM s LEFT JOIN t WITHIN (1 HOUR, 2 MINUTES) GRACE PERIOD 5 SECONDS ON s.k = t.k \
     WHERE ROWTIME > '2020-01-01' AND x LIKE '%y' GROUP BY a HAVING COUNT(*) > 2 EMIT FINAL LIMIT 4; \
     INSERT INTO s (a, b) VALUES (1, ${v}); PRINT 't' FROM BEGINNING LIMIT 2; DEFINE v = 'x';",
];

const SQL_DICTIONARY: [&[u8]; 32] = [
    b"SELECT ",
    b" FROM ",
    b" WHERE ",
    b" GROUP BY ",
    b" WINDOW TUMBLING (SIZE 1 SECOND) ",
    b" EMIT CHANGES",
    b" JOIN ",
    b" WITHIN 1 HOUR ",
    b"CREATE STREAM ",
    b"CREATE TABLE ",
    b" AS ",
    b" WITH (",
    b")",
    b"(",
    b"'",
    b"`",
    b"\"",
    b";",
    b",",
    b"STRUCT<",
    b"ARRAY<",
    b"MAP<",
    b">",
    b"${",
    b"}",
    b"--",
    b"/*",
    b"*/",
    b" KEY",
    b" PRIMARY KEY",
    b"->",
    b"[",
];

const JSON_DICTIONARY: [&[u8]; 20] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\"",
    b"null",
    b"true",
    b"false",
    b"1.5e3",
    b"-0",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\"A\"",
    b"\"M\"",
    b"\"S\"",
    b"{\"X\":1}",
    b"12345678901234567890",
    b"\"2020-01-01T00:00:00\"",
];

const DELIMITED_DICTIONARY: [&[u8]; 12] =
    [b",", b"\"", b"\"\"", b"\n", b"\r\n", b"", b"-", b"1.5", b"true", b"x", b"999999999999999999999", b"\t"];

/// Every type a value column can have, for the decoders.
const JSON_SOURCE: &str = "CREATE STREAM s (K STRING KEY, I INT, B BIGINT, D DOUBLE, N DECIMAL(6,2), S STRING, \
     F BOOLEAN, T TIMESTAMP, DT DATE, TM TIME, BY BYTES, A ARRAY<INT>, M MAP<STRING, DOUBLE>, \
     R STRUCT<X INT, Y ARRAY<STRING>>) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON')";
const DELIMITED_SOURCE: &str = "CREATE STREAM s (K STRING KEY, I INT, B BIGINT, D DOUBLE, N DECIMAL(6,2), \
     S STRING, F BOOLEAN, T TIMESTAMP, DT DATE, TM TIME) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='DELIMITED')";

/// The JSON columns the fast path takes, to check it against the general path.
static FLAT_JSON: std::sync::LazyLock<datafusion::arrow::datatypes::SchemaRef> = std::sync::LazyLock::new(|| {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let columns = [("I", DataType::Int32), ("B", DataType::Int64), ("D", DataType::Float64)];
    let more = [("S", DataType::Utf8), ("F", DataType::Boolean)];
    Arc::new(Schema::new(columns.into_iter().chain(more).map(|(n, t)| Field::new(n, t, true)).collect::<Vec<_>>()))
});

impl Harness {
    fn new(target: Target) -> Result<Harness, String> {
        match target {
            Target::Sql => Ok(Harness::Sql),
            Target::Json | Target::Delimited => {
                let (ddl, seeds): (&str, Vec<&str>) = if target == Target::Json {
                    (
                        JSON_SOURCE,
                        vec![
                            r#"{"I":1,"B":2,"D":1.5,"N":"12.34","S":"x","F":true,"T":"2020-01-01T00:00:00.000","DT":"2020-01-01","TM":"10:00:00","BY":"AAE=","A":[1,2],"M":{"a":1.0},"R":{"X":1,"Y":["q"]}}"#,
                            r#"{"i":null,"s":"\u00e9","a":[],"m":{},"r":null}"#,
                            r#"[1, 2]"#,
                            r#"{"i":1,"b":-2,"d":1.5e3,"s":"x\"y","f":false,"x":[{"a":"}"}]}"#,
                        ],
                    )
                } else {
                    (
                        DELIMITED_SOURCE,
                        vec!["1,2,1.5,12.34,x,true,1577836800000,18262,36000000", r#","",,,"a,""b",,,,"#],
                    )
                };
                let Ok(Statement::CreateSource(create)) = crate::sql::parse_one(ddl) else {
                    return Err("the decoder's source does not parse".into());
                };
                let source = Catalog::default().plan_source(&create, ddl.to_owned()).map_err(|e| e.0)?;
                let schema = crate::engine::source::row_schema(&source);
                Ok(Harness::Decoder {
                    source: Arc::new(source),
                    schema,
                    seeds: seeds.into_iter().map(|s| s.as_bytes().to_vec()).collect(),
                })
            }
            Target::Segment => {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let segment = runtime.block_on(async {
                    let log = EmbeddedLog::open(dir.path()).map_err(|e| e.to_string())?;
                    log.create_topic("t", &TopicSpec::new(1)).await.map_err(|e| e.to_string())?;
                    for batch in 0..3 {
                        let records: Vec<NewRecord> = (0..4)
                            .map(|i| {
                                NewRecord::new(
                                    batch * 10 + i,
                                    Some(Bytes::from(format!("k{i}"))),
                                    (i != 2).then(|| Bytes::from(format!("value {batch}/{i}"))),
                                )
                            })
                            .collect();
                        log.append("t", 0, &records).await.map_err(|e| e.to_string())?;
                    }
                    Ok::<_, String>(dir.path().join("topics/t/0").join(crate::log::embedded::segment_file_name(0)))
                })?;
                let seed = std::fs::read(&segment).map_err(|e| e.to_string())?;
                Ok(Harness::Segment { dir, segment, seed, runtime })
            }
        }
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        match self {
            Harness::Sql => SQL_SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect(),
            Harness::Decoder { seeds, .. } => seeds.clone(),
            Harness::Segment { seed, .. } => vec![seed.clone()],
        }
    }

    fn dictionary(&self) -> &'static [&'static [u8]] {
        match self {
            Harness::Sql => &SQL_DICTIONARY,
            Harness::Decoder { source, .. } if source.value_format.is(crate::format::DELIMITED) => {
                &DELIMITED_DICTIONARY
            }
            Harness::Decoder { .. } => &JSON_DICTIONARY,
            Harness::Segment { .. } => &[b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x01", b"\0\0\0\x10"],
        }
    }

    /// Runs one input; `Err` names a broken property.
    fn check(&mut self, input: &[u8]) -> Result<(), String> {
        match self {
            Harness::Sql => {
                let text = String::from_utf8_lossy(input);
                // The whole script as the session splits it, then each statement alone.
                if let Ok(tokens) = crate::sql::lexer::tokenize(&text) {
                    for statement in crate::sql::lexer::split_statements(tokens) {
                        let _ = crate::sql::parser::parse_statement_tokens(statement);
                    }
                }
                let _ = crate::sql::parse_sql(&text);
                Ok(())
            }
            Harness::Decoder { source, schema, .. } => {
                // The input is a batch of records: its lines, as values (and the first as a key).
                let records: Vec<Record> = input
                    .split(|b| *b == b'\n')
                    .enumerate()
                    .map(|(i, line)| Record {
                        offset: i as u64,
                        timestamp_ms: i as i64,
                        key: (i == 0).then(|| Bytes::copy_from_slice(line)),
                        value: Some(Bytes::copy_from_slice(line)),
                        headers: Vec::new(),
                    })
                    .collect();
                if source.value_format.is(crate::format::JSON) {
                    let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
                    crate::format::json::check_fast_path(&FLAT_JSON, &lines)?;
                }
                let rows = crate::engine::source::decode(source, schema, 0, &records)
                    .map_err(|e| format!("a batch failed as a whole instead of record by record: {e}"))?;
                let mut bad: Vec<u64> = rows.errors.iter().map(|(offset, _)| *offset).collect();
                bad.dedup();
                if rows.batch.num_rows() + bad.len() != records.len() {
                    return Err(format!(
                        "{} records made {} rows and {} errors",
                        records.len(),
                        rows.batch.num_rows(),
                        bad.len()
                    ));
                }
                Ok(())
            }
            Harness::Segment { dir, segment, runtime, .. } => {
                std::fs::write(&*segment, input).map_err(|e| e.to_string())?;
                let _ = std::fs::remove_file(segment.with_extension("index"));
                runtime.block_on(async {
                    // A damaged segment may be refused; whatever opens must read back in order.
                    let Ok(log) = EmbeddedLog::open(dir.path()) else { return Ok(()) };
                    let Ok(end) = log.latest_offset("t", 0).await else { return Ok(()) };
                    let mut offset = log.earliest_offset("t", 0).await.unwrap_or(0);
                    while offset < end {
                        let Ok(fetch) = log.read("t", 0, offset, 4096).await else { return Ok(()) };
                        let Some(last) = fetch.records.last() else {
                            return Err(format!("an empty read at {offset} below the end {end}"));
                        };
                        for (i, record) in fetch.records.iter().enumerate() {
                            if record.offset != offset + i as u64 {
                                return Err(format!("offset {} where {} was due", record.offset, offset + i as u64));
                            }
                        }
                        offset = last.offset + 1;
                    }
                    Ok(())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_is_reproducible_and_bounded() {
        let seeds = vec![b"SELECT 1;".to_vec()];
        let run = |seed| {
            let mut rng = Rng(seed);
            let mut input = seeds[0].clone();
            for _ in 0..1000 {
                mutate(&mut rng, &mut input, &SQL_DICTIONARY, &seeds);
            }
            input
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(7).len() <= MAX_INPUT);
    }
}
