//! `GET /metrics`: Prometheus' text format — per persistent query its records and bytes in
//! and out, errors, consumer lag and processing-latency histogram; per connector its records
//! and bytes, errors, lag and state; the push queries running.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::engine::query::LATENCY_BUCKETS_SECONDS;
use crate::session::{ConnectorMetrics, QueryMetrics};

pub(super) async fn handle(State(shared): State<Arc<Shared>>) -> Response {
    let (queries, connectors, log) = {
        let session = shared.session.lock().await;
        (session.query_metrics().await, session.connector_metrics().await, Arc::clone(session.log()))
    };
    // Read from the log, not the session: /ksql need not wait for it.
    let topics = topic_records(log.as_ref()).await;
    let push = shared.config.max_push_queries - shared.push_permits.available_permits();
    let mut text = render(&queries, push);
    text.push_str(&render_connectors(&connectors));
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

/// A connector's counter: its name, help, and value.
type ConnectorCounter = (&'static str, &'static str, fn(&ConnectorMetrics) -> u64);

/// The connectors' exposition text.
pub fn render_connectors(connectors: &[ConnectorMetrics]) -> String {
    let mut out = String::new();
    let labels = |c: &ConnectorMetrics| format!("connector=\"{}\",type=\"{}\"", escape(&c.name), c.kind);
    let counters: [ConnectorCounter; 5] = [
        (
            "eddy_connector_records_in_total",
            "Records a connector has taken in (from outside, or from its topics).",
            |c| c.records_in,
        ),
        (
            "eddy_connector_records_out_total",
            "Records a connector has put out (into its topic, or committed outside).",
            |c| c.records_out,
        ),
        ("eddy_connector_bytes_total", "Key and value bytes a connector has moved.", |c| c.bytes),
        ("eddy_connector_errors_total", "Transient errors a connector has met (each followed by a retry).", |c| {
            c.errors
        }),
        ("eddy_connector_skipped_total", "Records a sink connector could not take (see PROCESSING_LOG).", |c| {
            c.skipped
        }),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for c in connectors {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(c), value(c));
        }
    }
    let _ = writeln!(
        out,
        "# HELP eddy_connector_lag Records in a sink connector's topics past its last commit.\n# TYPE \
         eddy_connector_lag gauge"
    );
    for c in connectors {
        let _ = writeln!(out, "eddy_connector_lag{{{}}} {}", labels(c), c.lag);
    }
    let _ = writeln!(
        out,
        "# HELP eddy_connector_running Whether a connector is running (1) or not (0), with its state and class.\n# \
         TYPE eddy_connector_running gauge"
    );
    for c in connectors {
        let _ = writeln!(
            out,
            "eddy_connector_running{{{},class=\"{}\",state=\"{}\"}} {}",
            labels(c),
            escape(&c.class),
            escape(&c.state),
            u8::from(c.state == "RUNNING")
        );
    }
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
    fn connectors_are_prometheus_text() {
        let sink = ConnectorMetrics {
            name: "PG".into(),
            kind: "sink",
            class: "JdbcSinkConnector".into(),
            state: "RETRYING".into(),
            records_in: 12,
            records_out: 10,
            bytes: 300,
            errors: 2,
            skipped: 1,
            lag: 5,
        };
        let text = render_connectors(&[sink]);
        for line in [
            "# TYPE eddy_connector_records_in_total counter",
            "eddy_connector_records_in_total{connector=\"PG\",type=\"sink\"} 12",
            "eddy_connector_records_out_total{connector=\"PG\",type=\"sink\"} 10",
            "eddy_connector_bytes_total{connector=\"PG\",type=\"sink\"} 300",
            "eddy_connector_errors_total{connector=\"PG\",type=\"sink\"} 2",
            "eddy_connector_lag{connector=\"PG\",type=\"sink\"} 5",
            "eddy_connector_running{connector=\"PG\",type=\"sink\",class=\"JdbcSinkConnector\",state=\"RETRYING\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

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
