//! `GET /metrics`: Prometheus' text format — per persistent query its records and bytes in
//! and out, errors, consumer lag and processing-latency histogram; the push queries running.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::engine::query::LATENCY_BUCKETS_SECONDS;
use crate::session::QueryMetrics;

pub(super) async fn handle(State(shared): State<Arc<Shared>>) -> Response {
    let (queries, log) = {
        let session = shared.session.lock().await;
        (session.query_metrics().await, Arc::clone(session.log()))
    };
    // Read from the log, not the session: /ksql need not wait for it.
    let topics = topic_records(log.as_ref()).await;
    let push = shared.config.max_push_queries - shared.push_permits.available_permits();
    let mut text = render(&queries, push);
    let _ = writeln!(
        text,
        "# HELP eddy_topic_records Records a topic holds (latest less earliest offset, over its partitions).\n# \
         TYPE eddy_topic_records gauge"
    );
    for (topic, records) in topics {
        let _ = writeln!(text, "eddy_topic_records{{topic=\"{}\"}} {records}", escape(&topic));
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The records each topic holds (internal topics, `_…`, left out).
async fn topic_records(log: &dyn crate::log::Log) -> Vec<(String, u64)> {
    let mut all = Vec::new();
    for topic in log.list_topics().await.unwrap_or_default() {
        if topic.starts_with('_') {
            continue;
        }
        let mut records = 0;
        for partition in 0..log.partition_count(&topic).await.unwrap_or(0) {
            let latest = log.latest_offset(&topic, partition).await.unwrap_or(0);
            let earliest = log.earliest_offset(&topic, partition).await.unwrap_or(0);
            records += latest.saturating_sub(earliest);
        }
        all.push((topic, records));
    }
    all
}

/// A counter: its name, help, and value of a query.
type Counter = (&'static str, &'static str, fn(&QueryMetrics) -> u64);

/// The exposition text.
pub fn render(queries: &[QueryMetrics], push_queries: usize) -> String {
    let mut out = String::new();
    let counters: [Counter; 6] = [
        ("eddy_query_records_in_total", "Records a persistent query has read.", |q| q.records_in),
        ("eddy_query_records_out_total", "Records a persistent query has written.", |q| q.records_out),
        ("eddy_query_bytes_in_total", "Key and value bytes a persistent query has read.", |q| q.bytes_in),
        ("eddy_query_bytes_out_total", "Key and value bytes a persistent query has written.", |q| q.bytes_out),
        ("eddy_query_errors_total", "Records a persistent query skipped (undecodable or unwritable).", |q| q.errors),
        ("eddy_query_checkpoints_total", "Checkpoints a persistent query has taken.", |q| q.checkpoints),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for q in queries {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(q), value(q));
        }
    }
    let _ = writeln!(
        out,
        "# HELP eddy_query_consumer_lag Records in a persistent query's inputs it has not processed.\n# TYPE \
         eddy_query_consumer_lag gauge"
    );
    for q in queries {
        let _ = writeln!(out, "eddy_query_consumer_lag{{{}}} {}", labels(q), q.lag);
    }
    let _ = writeln!(
        out,
        "# HELP eddy_query_state_bytes Bytes a persistent query's state holds (at its last barrier).\n# TYPE \
         eddy_query_state_bytes gauge"
    );
    for q in queries {
        let _ = writeln!(out, "eddy_query_state_bytes{{{}}} {}", labels(q), q.state_bytes);
    }
    let _ = writeln!(
        out,
        "# HELP eddy_query_running Whether a persistent query is running (1) or stopped (0).\n# TYPE \
         eddy_query_running gauge"
    );
    for q in queries {
        let _ = writeln!(out, "eddy_query_running{{{}}} {}", labels(q), u8::from(q.status == "RUNNING"));
    }
    let name = "eddy_query_processing_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} From reading a batch of records to having written what it produced.\n# TYPE {name} histogram"
    );
    for q in queries {
        let (counts, sum) = &q.latency;
        for (bound, count) in LATENCY_BUCKETS_SECONDS.iter().zip(counts) {
            let _ = writeln!(out, "{name}_bucket{{{},le=\"{bound}\"}} {count}", labels(q));
        }
        let total = counts.last().copied().unwrap_or(0);
        let _ = writeln!(out, "{name}_bucket{{{},le=\"+Inf\"}} {total}", labels(q));
        let _ = writeln!(out, "{name}_sum{{{}}} {sum}", labels(q));
        let _ = writeln!(out, "{name}_count{{{}}} {total}", labels(q));
    }
    let _ = writeln!(
        out,
        "# HELP eddy_push_queries Push queries running.\n# TYPE eddy_push_queries gauge\neddy_push_queries {push_queries}"
    );
    out
}

fn labels(q: &QueryMetrics) -> String {
    format!("query=\"{}\",sink=\"{}\"", escape(&q.id), escape(&q.sink))
}

/// A label value escaped as Prometheus' text format requires.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_prometheus_text() {
        let query = QueryMetrics {
            id: "CSAS_OUT_1".into(),
            sink: "OUT".into(),
            status: "RUNNING".into(),
            records_in: 10,
            records_out: 7,
            bytes_in: 100,
            bytes_out: 70,
            errors: 1,
            lag: 3,
            state_bytes: 4096,
            checkpoints: 5,
            latency: ((1..=13).collect(), 0.5),
        };
        let text = render(&[query], 2);
        for line in [
            "# TYPE eddy_query_records_in_total counter",
            "eddy_query_records_in_total{query=\"CSAS_OUT_1\",sink=\"OUT\"} 10",
            "eddy_query_consumer_lag{query=\"CSAS_OUT_1\",sink=\"OUT\"} 3",
            "eddy_query_processing_latency_seconds_bucket{query=\"CSAS_OUT_1\",sink=\"OUT\",le=\"0.001\"} 1",
            "eddy_query_processing_latency_seconds_bucket{query=\"CSAS_OUT_1\",sink=\"OUT\",le=\"+Inf\"} 13",
            "eddy_query_processing_latency_seconds_count{query=\"CSAS_OUT_1\",sink=\"OUT\"} 13",
            "eddy_push_queries 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
