//! `eddy bench json`: the bids file decoded into Arrow batches of its seven columns on one
//! core, by each JSON reader there is to choose from: arrow-json (DataFusion's reader, and
//! Eddy's general path), Eddy's one-pass decoder (`format::json::flat`), and — in a build
//! with `--features json-parsers` — the SIMD parsers simd-json and sonic-rs, each with the
//! Arrow columns built from what it parsed. Every reader's batches are checked to hold the
//! same values.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};

use crate::cli::CliError;

#[derive(Debug, clap::Args)]
pub struct JsonBenchArgs {
    /// The bids, one JSON object per line (`gen_bids.py N FILE`).
    #[arg(long)]
    input: PathBuf,
    /// Runs of each reader; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Records per batch, as a query's rounds hold.
const BATCH: usize = 8192;

/// The bids' columns, named as in the file.
fn schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let long = |name: &str| Field::new(name, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        long("auction"),
        long("bidder"),
        long("price"),
        text("channel"),
        text("url"),
        text("date_time"),
        text("extra"),
    ]))
}

/// A reader: the batches of each chunk of lines.
type Reader = fn(&SchemaRef, &[&[u8]]) -> Result<RecordBatch, String>;

fn readers() -> Vec<(&'static str, Reader)> {
    let ours: [(&'static str, Reader); 2] = [("arrow-json", arrow_json), ("eddy-one-pass", one_pass)];
    #[cfg(feature = "json-parsers")]
    return ours.into_iter().chain(simd::READERS).collect();
    #[cfg(not(feature = "json-parsers"))]
    ours.to_vec()
}

pub async fn run(args: JsonBenchArgs) -> Result<(), CliError> {
    let lines = super::bids::read_lines(&args.input)?;
    let bytes: usize = lines.iter().map(Bytes::len).sum();
    let schema = schema();
    let chunks: Vec<Vec<&[u8]>> = lines.chunks(BATCH).map(|c| c.iter().map(|l| l.as_ref()).collect()).collect();
    let mut expected: Option<String> = None;
    for (name, reader) in readers() {
        let mut best = f64::INFINITY;
        let mut check = String::new();
        for _ in 0..args.runs.max(1) {
            let started = Instant::now();
            let batches = chunks
                .iter()
                .map(|chunk| reader(&schema, chunk))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CliError::User(format!("{name}: {e}")))?;
            best = best.min(started.elapsed().as_secs_f64());
            check = check_of(&batches);
        }
        match &expected {
            Some(expected) if *expected != check => {
                return Err(CliError::User(format!("{name} read other values: {check}, not {expected}")));
            }
            Some(_) => {}
            None => expected = Some(check),
        }
        println!(
            "json {name} records={} seconds={best:.3} records_per_s={:.0} mb_per_s={:.0}",
            lines.len(),
            lines.len() as f64 / best,
            bytes as f64 / best / 1e6
        );
    }
    if cfg!(not(feature = "json-parsers")) {
        println!("(simd-json and sonic-rs are measured in a build with --features json-parsers)");
    }
    Ok(())
}

/// What the batches hold, in brief: rows, the sums of the numbers, the bytes of the text.
fn check_of(batches: &[RecordBatch]) -> String {
    let (mut rows, mut sums, mut text) = (0, [0i64; 3], 0);
    for batch in batches {
        rows += batch.num_rows();
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum = batch.column(i).as_primitive::<Int64Type>().iter().flatten().fold(*sum, i64::wrapping_add);
        }
        for column in &batch.columns()[3..] {
            let strings = column.as_string::<i32>();
            text += strings.value_data().len() + strings.null_count();
        }
    }
    format!("rows={rows} sums={sums:?} text={text}")
}

/// arrow-json's reader, given the lines as one newline-separated buffer (as DataFusion reads
/// a file).
fn arrow_json(schema: &SchemaRef, lines: &[&[u8]]) -> Result<RecordBatch, String> {
    let mut text = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(lines.len().max(1))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    decoder.decode(&text).map_err(|e| e.to_string())?;
    decoder.flush().map_err(|e| e.to_string())?.ok_or_else(|| "no rows".to_owned())
}

/// Eddy's JSON codec, which takes the one-pass path for these columns.
fn one_pass(schema: &SchemaRef, lines: &[&[u8]]) -> Result<RecordBatch, String> {
    let codec = crate::format::builtin(crate::format::JSON)
        .codec(schema.clone(), crate::format::FormatOptions::default())
        .map_err(|e| e.0)?;
    let decoded = codec.decode(lines).map_err(|e| e.0)?;
    Ok(decoded.batch)
}

#[cfg(feature = "json-parsers")]
mod simd {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
    use datafusion::arrow::datatypes::{DataType, SchemaRef};

    use super::Reader;

    pub const READERS: [(&str, Reader); 3] =
        [("simd-json-dom", simd_json_dom), ("sonic-rs-dom", sonic_rs_dom), ("sonic-rs-lazy", sonic_rs_lazy)];

    /// Arrow builders for the schema's columns, filled a value at a time.
    struct Columns {
        longs: Vec<Option<Int64Builder>>,
        texts: Vec<Option<StringBuilder>>,
        /// Set by the current record.
        seen: Vec<bool>,
    }

    impl Columns {
        fn new(schema: &SchemaRef, rows: usize) -> Self {
            let fields = schema.fields();
            Columns {
                longs: fields
                    .iter()
                    .map(|f| (f.data_type() == &DataType::Int64).then(|| Int64Builder::with_capacity(rows)))
                    .collect(),
                texts: fields
                    .iter()
                    .map(|f| (f.data_type() == &DataType::Utf8).then(|| StringBuilder::with_capacity(rows, rows * 16)))
                    .collect(),
                seen: vec![false; fields.len()],
            }
        }

        /// The value of `key` (read as a number and as text: the column's type picks).
        fn put(&mut self, schema: &SchemaRef, key: &str, long: Option<i64>, text: Option<&str>) -> Result<(), String> {
            let Some((column, _)) = schema.fields().find(key) else { return Ok(()) };
            self.seen[column] = true;
            if let Some(builder) = &mut self.longs[column] {
                builder.append_option(long);
            } else if let Some(builder) = &mut self.texts[column] {
                builder.append_option(text);
            } else {
                return Err(format!("no builder for {key}"));
            }
            Ok(())
        }

        /// Nulls for the columns the record had no key for.
        fn end_record(&mut self) {
            for (column, seen) in self.seen.iter_mut().enumerate() {
                if !std::mem::take(seen) {
                    if let Some(b) = &mut self.longs[column] {
                        b.append_null();
                    } else if let Some(b) = &mut self.texts[column] {
                        b.append_null();
                    }
                }
            }
        }

        fn finish(mut self, schema: &SchemaRef) -> Result<RecordBatch, String> {
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.seen.len());
            for column in 0..self.seen.len() {
                if let Some(b) = &mut self.longs[column] {
                    columns.push(Arc::new(b.finish()));
                } else if let Some(b) = &mut self.texts[column] {
                    columns.push(Arc::new(b.finish()));
                }
            }
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
        }
    }

    /// simd-json's borrowed DOM of each line (it parses in place: each line is copied
    /// into a buffer first, as it must be).
    fn simd_json_dom(schema: &SchemaRef, lines: &[&[u8]]) -> Result<RecordBatch, String> {
        use simd_json::prelude::*;
        let mut columns = Columns::new(schema, lines.len());
        let mut buffer = Vec::new();
        let mut buffers = simd_json::Buffers::default();
        for line in lines {
            buffer.clear();
            buffer.extend_from_slice(line);
            let value = simd_json::value::borrowed::to_value_with_buffers(&mut buffer, &mut buffers)
                .map_err(|e| e.to_string())?;
            let object = value.as_object().ok_or("not an object")?;
            for (key, value) in object.iter() {
                columns.put(schema, key, value.as_i64(), value.as_str())?;
            }
            columns.end_record();
        }
        columns.finish(schema)
    }

    /// sonic-rs's DOM of each line.
    fn sonic_rs_dom(schema: &SchemaRef, lines: &[&[u8]]) -> Result<RecordBatch, String> {
        use sonic_rs::{JsonContainerTrait, JsonValueTrait};
        let mut columns = Columns::new(schema, lines.len());
        for line in lines {
            let value: sonic_rs::Value = sonic_rs::from_slice(line).map_err(|e| e.to_string())?;
            let object = value.as_object().ok_or("not an object")?;
            for (key, value) in object.iter() {
                columns.put(schema, key, value.as_i64(), value.as_str())?;
            }
            columns.end_record();
        }
        columns.finish(schema)
    }

    /// sonic-rs's lazy iteration over each line's keys (values parsed only when read).
    fn sonic_rs_lazy(schema: &SchemaRef, lines: &[&[u8]]) -> Result<RecordBatch, String> {
        use sonic_rs::JsonValueTrait;
        let mut columns = Columns::new(schema, lines.len());
        for line in lines {
            for entry in sonic_rs::to_object_iter(*line) {
                let (key, value) = entry.map_err(|e| e.to_string())?;
                columns.put(schema, &key, value.as_i64(), value.as_str())?;
            }
            columns.end_record();
        }
        columns.finish(schema)
    }
}
