//! The HTTP server speaks ksqlDB's REST API: statements answered with ksqlDB's entities and
//! errors, push queries streamed over HTTP/1.1 and HTTP/2 (one chunk or frame per line) and
//! stopped by `/close-query` or by the client going away, pull queries, `/inserts-stream`,
//! Basic auth, and the cap on push queries.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

use eddy::log::{EmbeddedLog, Log};
use eddy::server::{Config, Running};
use eddy::session::Session;

async fn server(dir: &std::path::Path, config: Config) -> Running {
    let log: std::sync::Arc<dyn Log> = std::sync::Arc::new(EmbeddedLog::open(dir).unwrap());
    let session = Session::open(log).await.unwrap();
    let config = Config { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..config };
    eddy::server::start(session, config).await.unwrap()
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path).header("host", "localhost");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

/// Sends one request on a new HTTP/1.1 connection.
async fn send_http1(addr: SocketAddr, request: Request<Full<Bytes>>) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender.send_request(request).await.unwrap()
}

/// Sends one request on a new HTTP/2 connection (cleartext, prior knowledge).
async fn send_http2(addr: SocketAddr, request: Request<Full<Bytes>>) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender.send_request(request).await.unwrap()
}

/// A whole response: status and body text.
async fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> (StatusCode, String) {
    let response = send_http1(addr, request(method, path, &[], body)).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn ksql(addr: SocketAddr, statements: &str) -> (StatusCode, Value) {
    let body = json!({"ksql": statements, "streamsProperties": {"ksql.streams.auto.offset.reset": "earliest"}});
    let (status, text) = call(addr, "POST", "/ksql", &body.to_string()).await;
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

/// The next chunk (HTTP/1.1) or DATA frame (HTTP/2) of a body, as text; `None` at its end.
async fn next_chunk(body: &mut Incoming) -> Option<String> {
    loop {
        let frame = body.frame().await?.unwrap();
        // (An empty DATA frame may close an HTTP/2 stream.)
        if let Ok(data) = frame.into_data()
            && !data.is_empty()
        {
            return Some(String::from_utf8(data.to_vec()).unwrap());
        }
    }
}

const PAGEVIEWS: &str = "CREATE STREAM pageviews (user_id STRING KEY, page STRING, ms INT) \
     WITH (kafka_topic='pageviews', value_format='json', partitions=1);
     INSERT INTO pageviews (ROWTIME, user_id, page, ms) VALUES (1000, 'alice', '/home', 5);
     INSERT INTO pageviews (ROWTIME, user_id, page, ms) VALUES (2000, 'bob', '/cart', 7);";

#[tokio::test]
async fn statements_are_answered_with_ksqldb_entities_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), Config::default()).await;
    let addr = server.addr;

    let (status, info) = call(addr, "GET", "/info", "").await;
    assert_eq!(status, StatusCode::OK);
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["KsqlServerInfo"]["serverStatus"], "RUNNING");

    let (status, entities) = ksql(addr, &format!("{PAGEVIEWS} SHOW STREAMS; DESCRIBE pageviews;")).await;
    assert_eq!(status, StatusCode::OK, "{entities}");
    // The CREATE, then SHOW and DESCRIBE (INSERT VALUES answers nothing, as in ksqlDB).
    assert_eq!(entities.as_array().unwrap().len(), 3, "{entities}");
    assert_eq!(entities[0]["@type"], "currentStatus");
    assert_eq!(entities[0]["commandId"], "stream/`PAGEVIEWS`/create");
    assert_eq!(entities[0]["commandStatus"]["status"], "SUCCESS");
    assert_eq!(entities[0]["commandStatus"]["message"], "Stream created");
    assert!(entities[0]["statementText"].as_str().unwrap().starts_with("CREATE STREAM pageviews"));
    assert_eq!(
        entities[1]["streams"],
        json!([{"type": "STREAM", "name": "PAGEVIEWS", "topic": "pageviews", "keyFormat": "KAFKA",
                "valueFormat": "JSON", "isWindowed": false}])
    );
    let description = &entities[2]["sourceDescription"];
    assert_eq!(entities[2]["@type"], "sourceDescription");
    assert_eq!(
        description["fields"][0],
        json!({"name": "USER_ID", "type": "KEY",
        "schema": {"type": "STRING", "fields": null, "memberSchema": null}})
    );
    assert_eq!(description["fields"][2]["schema"]["type"], "INTEGER");

    // A query's id in its status; the first failure answers 400 with what went before.
    let (status, entities) = ksql(addr, "CREATE TABLE per_user AS SELECT user_id, COUNT(*) AS views FROM pageviews GROUP BY user_id; CREATE STREAM broken AS SELECT * FROM missing;").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(entities["@type"], "statement_error");
    assert_eq!(entities["error_code"], 40001);
    assert!(entities["message"].as_str().unwrap().contains("MISSING"), "{entities}");
    assert_eq!(entities["statementText"], "CREATE STREAM broken AS SELECT * FROM missing;");
    assert_eq!(entities["entities"][0]["commandStatus"]["queryId"], "CTAS_PER_USER_1");

    let (status, entities) = ksql(addr, "SELECT * FROM pageviews EMIT CHANGES;").await;
    assert_eq!((status, entities["error_code"].clone()), (StatusCode::BAD_REQUEST, json!(40002)));
    let (status, text) = call(addr, "POST", "/ksql", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error_code"], 40000);
    assert_eq!(call(addr, "GET", "/nowhere", "").await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(addr, "GET", "/is_valid_property/auto.offset.reset", "").await, (StatusCode::OK, "true".into()));
    // A body over the limit (4 MiB) is refused, with ksqlDB's error entity.
    let huge = format!("{{\"ksql\": \"{}\"}}", " ".repeat(5 << 20));
    let (status, text) = call(addr, "POST", "/ksql", &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error_code"], 41300);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_push_query_streams_rows_over_http2_as_they_arrive_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), Config::default()).await;
    let addr = server.addr;
    assert_eq!(ksql(addr, PAGEVIEWS).await.0, StatusCode::OK);

    let query = json!({"sql": "SELECT user_id, ms FROM pageviews EMIT CHANGES;",
                       "properties": {"auto.offset.reset": "earliest"}});
    let response = send_http2(addr, request("POST", "/query-stream", &[], &query.to_string())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // One frame per line: the metadata, then each row.
    let metadata: Value = serde_json::from_str(&next_chunk(&mut body).await.unwrap()).unwrap();
    assert_eq!(metadata["columnNames"], json!(["USER_ID", "MS"]));
    assert_eq!(metadata["columnTypes"], json!(["STRING", "INTEGER"]));
    assert_eq!(next_chunk(&mut body).await.unwrap(), "[\"alice\",5]\n");
    assert_eq!(next_chunk(&mut body).await.unwrap(), "[\"bob\",7]\n");
    // A row inserted now arrives on the open stream.
    ksql(addr, "INSERT INTO pageviews (user_id, page, ms) VALUES ('carol', '/x', 9);").await;
    assert_eq!(next_chunk(&mut body).await.unwrap(), "[\"carol\",9]\n");
    assert_eq!(server.push_queries(), 1);

    let id = metadata["queryId"].as_str().unwrap();
    assert!(id.starts_with("transient_PAGEVIEWS_"), "{id}");
    let (status, _) = call(addr, "POST", "/close-query", &json!({"queryId": id}).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(next_chunk(&mut body).await, None, "the stream ends when the query is closed");
    let (status, text) = call(addr, "POST", "/close-query", &json!({"queryId": id}).to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn query_answers_in_ksqldb_streamed_rows_for_push_and_pull_queries() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), Config::default()).await;
    let addr = server.addr;
    ksql(addr, PAGEVIEWS).await;
    let (_, _) =
        ksql(addr, "CREATE TABLE per_user AS SELECT user_id, COUNT(*) AS views FROM pageviews GROUP BY user_id;").await;
    server.with_session(async |s: &mut Session| s.wait_until_idle().await.unwrap()).await;

    let push = json!({"ksql": "SELECT * FROM pageviews EMIT CHANGES LIMIT 2;",
                      "streamsProperties": {"ksql.streams.auto.offset.reset": "earliest"}});
    let (status, text) = call(addr, "POST", "/query", &push.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let id = text.split('"').nth(5).unwrap().to_owned();
    assert_eq!(
        text,
        format!(
            "[{{\"header\":{{\"queryId\":\"{id}\",\"schema\":\"`USER_ID` STRING, `PAGE` STRING, `MS` INTEGER\"}}}},\n\
             {{\"row\":{{\"columns\":[\"alice\",\"/home\",5]}}}},\n\
             {{\"row\":{{\"columns\":[\"bob\",\"/cart\",7]}}}},\n\
             {{\"finalMessage\":\"Limit Reached\"}}]"
        )
    );
    // A pull query marks its key columns and ends with the array.
    let (status, text) = call(addr, "POST", "/query", &json!({"ksql": "SELECT * FROM per_user;"}).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains(r#""schema":"`USER_ID` STRING KEY, `VIEWS` BIGINT""#), "{text}");
    assert_eq!(&lines[1..], [r#"{"row":{"columns":["alice",1]}},"#, r#"{"row":{"columns":["bob",1]}}]"#]);

    // `Accept: application/json` on /query-stream: one array.
    let pull = json!({"sql": "SELECT * FROM per_user WHERE user_id = 'bob';"});
    let response =
        send_http1(addr, request("POST", "/query-stream", &[("accept", "application/json")], &pull.to_string())).await;
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let array: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(array[0]["columnNames"], json!(["USER_ID", "VIEWS"]));
    assert_eq!(array[1], json!(["bob", 1]));
    assert_eq!(array.as_array().unwrap().len(), 2);
    // An unknown source: a 400 before any row.
    let (status, text) = call(addr, "POST", "/query-stream", &json!({"sql": "SELECT * FROM nope;"}).to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn inserts_stream_acknowledges_each_row() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), Config::default()).await;
    let addr = server.addr;
    ksql(addr, PAGEVIEWS).await;
    let body = "{\"target\":\"pageviews\"}\n{\"USER_ID\":\"dave\",\"PAGE\":\"/a\",\"MS\":1}\n\
                {\"user_id\":\"erin\",\"ms\":\"not a number\"}\n{\"user_id\":\"frank\",\"page\":\"/b\"}\n";
    let (status, text) = call(addr, "POST", "/inserts-stream", body).await;
    assert_eq!(status, StatusCode::OK);
    let acks: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(acks[0], json!({"status": "ok", "seq": 0}));
    assert_eq!((acks[1]["status"].clone(), acks[1]["seq"].clone()), (json!("error"), json!(1)));
    assert_eq!(acks[2], json!({"status": "ok", "seq": 2}));
    let response = send_http2(addr, request("POST", "/inserts-stream", &[("accept", "application/json")], body)).await;
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()[2], json!({"status": "ok", "seq": 2}));

    let query = json!({"sql": "SELECT user_id, ms FROM pageviews EMIT CHANGES LIMIT 6;",
                       "properties": {"auto.offset.reset": "earliest"}});
    let (_, text) = call(addr, "POST", "/query-stream", &query.to_string()).await;
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        rows,
        [r#"["alice",5]"#, r#"["bob",7]"#, r#"["dave",1]"#, r#"["frank",null]"#, r#"["dave",1]"#, r#"["frank",null]"#]
    );
    let (status, _) = call(addr, "POST", "/inserts-stream", "{\"target\":\"nope\"}\n{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_goes_away_ends_its_push_query_and_the_cap_holds() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), Config { max_push_queries: 1, ..Config::default() }).await;
    let addr = server.addr;
    ksql(addr, PAGEVIEWS).await;
    let query = json!({"sql": "SELECT * FROM pageviews EMIT CHANGES;"}).to_string();
    let response = send_http1(addr, request("POST", "/query-stream", &[], &query)).await;
    let mut body = response.into_body();
    assert!(next_chunk(&mut body).await.unwrap().contains("columnNames"));
    assert_eq!(server.push_queries(), 1);
    // The cap: a second push query is refused while the first runs.
    let (status, text) = call(addr, "POST", "/query-stream", &query).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error_code"], 40003);
    // The client goes away (its connection closes with the body): the query ends.
    drop(body);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while server.push_queries() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(ended.is_ok(), "the push query still runs after its client left");
    let (status, _) = call(addr, "POST", "/query-stream", &json!({"sql": "SELECT * FROM pageviews EMIT CHANGES LIMIT 1;", "properties": {"auto.offset.reset": "earliest"}}).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn basic_auth_is_required_on_every_endpoint_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), Config { auth: Some("fred:secret".into()), ..Config::default() }).await;
    let addr = server.addr;
    for (method, path) in [("GET", "/info"), ("POST", "/ksql"), ("POST", "/query-stream"), ("GET", "/")] {
        let (status, text) = call(addr, method, path, "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error_code"], 40100);
    }
    let wrong = send_http1(addr, request("GET", "/info", &[("authorization", "Basic ZnJlZDpub3Bl")], "")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // fred:secret
    let right = send_http1(addr, request("GET", "/info", &[("authorization", "Basic ZnJlZDpzZWNyZXQ=")], "")).await;
    assert_eq!(right.status(), StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_each_querys_records_bytes_lag_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), Config::default()).await;
    let addr = server.addr;
    ksql(addr, PAGEVIEWS).await;
    let (status, _) = ksql(addr, "CREATE STREAM long_views AS SELECT user_id, ms FROM pageviews WHERE ms > 5;").await;
    assert_eq!(status, StatusCode::OK);
    server.with_session(async |s: &mut Session| s.wait_until_idle().await.unwrap()).await;
    let (status, text) = call(addr, "GET", "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    let value = |name: &str| -> f64 {
        let prefix = format!("{name}{{query=\"CSAS_LONG_VIEWS_1\",sink=\"LONG_VIEWS\"}} ");
        let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
        line[prefix.len()..].parse().unwrap()
    };
    assert_eq!(value("eddy_query_records_in_total"), 2.0);
    assert_eq!(value("eddy_query_records_out_total"), 1.0, "bob's 7 ms view passes the filter");
    assert!(value("eddy_query_bytes_in_total") > 0.0);
    assert!(value("eddy_query_bytes_out_total") > 0.0);
    assert_eq!(value("eddy_query_errors_total"), 0.0);
    assert_eq!(value("eddy_query_consumer_lag"), 0.0);
    assert!(value("eddy_query_processing_latency_seconds_count") >= 1.0);
    assert!(text.contains("# TYPE eddy_query_processing_latency_seconds histogram"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repl_runs_against_a_server_with_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), Config { auth: Some("fred:secret".into()), ..Config::default() }).await;
    let url = format!("http://fred:secret@{}", server.addr);
    let home = tempfile::tempdir().unwrap();
    let script = format!(
        "{PAGEVIEWS}\nSET 'auto.offset.reset' = 'earliest';\nSELECT user_id, ms FROM pageviews EMIT CHANGES LIMIT 2;\n\
         SHOW STREAMS;\nDESCRIBE pageviews;\nSELECT * FROM missing EMIT CHANGES;\nexit\n"
    );
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["--server", &url])
            .env("HOME", home.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains(" Stream created\n"), "{stdout}");
    assert!(stdout.contains("|USER_ID     |MS          |\n"), "{stdout}");
    assert!(stdout.contains("|alice       |5           |\n|bob         |7           |\n"), "{stdout}");
    assert!(stdout.contains(" PAGEVIEWS   | pageviews   | KAFKA      | JSON         | false"), "{stdout}");
    assert!(stdout.contains(" USER_ID | STRING (key)"), "{stdout}");
    assert!(stderr.contains("error: MISSING does not exist."), "{stderr}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn connectors_answer_with_ksqldbs_connector_entities_and_show_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), Config::default()).await;
    let addr = server.addr;
    let (status, created) = ksql(
        addr,
        "CREATE SOURCE CONNECTOR gen WITH ('connector.class'='DatagenSource', 'kafka.topic'='users',
           'quickstart'='users', 'max.interval'=0, 'iterations'=50, 'random.seed'=3);",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created[0]["@type"], "connector_info");
    assert_eq!(created[0]["info"]["name"], "GEN");
    assert_eq!(created[0]["info"]["type"], "source");
    assert_eq!(created[0]["info"]["config"]["quickstart"], "users");
    let (_, listed) = ksql(addr, "SHOW CONNECTORS;").await;
    assert_eq!(listed[0]["@type"], "connector_list");
    assert_eq!(listed[0]["connectors"][0]["name"], "GEN");
    assert_eq!(listed[0]["connectors"][0]["className"], "DatagenSource");
    let (_, described) = ksql(addr, "DESCRIBE CONNECTOR gen;").await;
    assert_eq!(described[0]["@type"], "connector_description");
    assert_eq!(described[0]["connectorClass"], "DatagenSource");
    assert_eq!(described[0]["status"]["tasks"][0]["id"], 0);
    assert_eq!(described[0]["topics"], serde_json::json!(["users"]));
    // Its 50 records, counted.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, text) = call(addr, "GET", "/metrics", "").await;
        if text.lines().any(|l| l == "eddy_connector_records_out_total{connector=\"GEN\",type=\"source\"} 50") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, missing) = ksql(addr, "DROP CONNECTOR nope;").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{missing}");
    let (_, dropped) = ksql(addr, "DROP CONNECTOR gen;").await;
    assert_eq!(dropped[0]["@type"], "drop_connector");
    assert_eq!(dropped[0]["connectorName"], "GEN");
    let (_, quiet) = ksql(addr, "DROP CONNECTOR IF EXISTS gen;").await;
    assert_eq!(quiet[0]["@type"], "warning_entity");
    assert_eq!(quiet[0]["message"], "Connector 'GEN' does not exist.");
}
