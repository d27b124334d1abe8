//! The embedded schema registry over HTTP, as Confluent's clients call it: registering,
//! reading by subject, version and id, configuration, and Confluent's error entities.

use std::sync::Arc;

use eddy::http::Client;
use eddy::log::{EmbeddedLog, Log};
use eddy::registry::{Registry, rest};
use tokio::sync::Mutex;

const CONTENT: &str = "application/vnd.schemaregistry.v1+json";

/// A registry served on a free port of this machine; its client.
async fn serve(dir: &std::path::Path) -> Client {
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir).unwrap());
    let registry = Arc::new(Mutex::new(Registry::open(log).await.unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, rest::router(registry)).await });
    Client::new(&format!("http://{address}")).unwrap()
}

async fn call(client: &Client, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let response = client.request(method, path, body, CONTENT).await.unwrap();
    let status = response.status;
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

#[tokio::test]
async fn confluents_api_registers_and_reads_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let client = serve(dir.path()).await;
    let schema = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#;
    let body = serde_json::json!({"schema": schema}).to_string();
    assert_eq!(
        call(&client, "POST", "/subjects/orders-value/versions", &body).await,
        (200, serde_json::json!({"id": 1}))
    );
    assert_eq!(call(&client, "GET", "/subjects", "").await, (200, serde_json::json!(["orders-value"])));
    assert_eq!(call(&client, "GET", "/subjects/orders-value/versions", "").await, (200, serde_json::json!([1])));
    assert_eq!(
        call(&client, "GET", "/subjects/orders-value/versions/latest", "").await,
        (200, serde_json::json!({"subject": "orders-value", "version": 1, "id": 1, "schema": schema}))
    );
    assert_eq!(call(&client, "GET", "/schemas/ids/1", "").await, (200, serde_json::json!({"schema": schema})));
    let (status, found) = call(&client, "POST", "/subjects/orders-value", &body).await;
    assert_eq!((status, found["version"].clone()), (200, serde_json::json!(1)));
    let proto =
        serde_json::json!({"schema": "syntax = \"proto3\"; message M { int64 id = 1; }", "schemaType": "PROTOBUF"});
    assert_eq!(
        call(&client, "POST", "/subjects/m-value/versions", &proto.to_string()).await,
        (200, serde_json::json!({"id": 2}))
    );
    assert_eq!(call(&client, "GET", "/schemas/ids/2", "").await.1["schemaType"], "PROTOBUF");
    // Configuration and mode.
    assert_eq!(call(&client, "GET", "/config", "").await, (200, serde_json::json!({"compatibilityLevel": "BACKWARD"})));
    let full = serde_json::json!({"compatibility": "FULL"}).to_string();
    assert_eq!(
        call(&client, "PUT", "/config/orders-value", &full).await,
        (200, serde_json::json!({"compatibility": "FULL"}))
    );
    assert_eq!(
        call(&client, "GET", "/config/orders-value", "").await.1,
        serde_json::json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(call(&client, "GET", "/mode", "").await.1, serde_json::json!({"mode": "READWRITE"}));
    // Errors as Confluent's: status, error code, message.
    assert_eq!(
        call(&client, "GET", "/subjects/nope/versions", "").await,
        (404, serde_json::json!({"error_code": 40401, "message": "Subject 'nope' not found."}))
    );
    assert_eq!(call(&client, "GET", "/subjects/orders-value/versions/9", "").await.1["error_code"], 40402);
    assert_eq!(call(&client, "GET", "/schemas/ids/42", "").await.1["error_code"], 40403);
    let (status, bad) = call(&client, "POST", "/subjects/x/versions", r#"{"schema": "{not avro"}"#).await;
    assert_eq!((status, bad["error_code"].clone()), (422, serde_json::json!(42201)));
    assert_eq!(call(&client, "GET", "/config/m-value", "").await.1["error_code"], 40408);
    // FULL on orders-value: a new field without a default is refused, and reported so.
    let breaking =
        r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"qty","type":"int"}]}"#;
    let breaking = serde_json::json!({"schema": breaking}).to_string();
    assert_eq!(
        call(&client, "POST", "/compatibility/subjects/orders-value/versions/latest", &breaking).await,
        (200, serde_json::json!({"is_compatible": false}))
    );
    let (status, refused) = call(&client, "POST", "/subjects/orders-value/versions", &breaking).await;
    assert_eq!((status, refused["error_code"].clone()), (409, serde_json::json!(409)), "{refused}");
    // Deleting a subject keeps its schema readable by id.
    assert_eq!(call(&client, "DELETE", "/subjects/m-value", "").await, (200, serde_json::json!([1])));
    assert_eq!(call(&client, "GET", "/subjects", "").await.1, serde_json::json!(["orders-value"]));
    assert_eq!(call(&client, "GET", "/schemas/ids/2", "").await.0, 200);
}

/// `ksql.schema.registry.url`'s client against the registry over HTTP: what the formats ask
/// (latest, register, schemas by id and by reference, ids of known schemas), and a registry
/// that is down as a retryable error. (Credentials are configured; Eddy's registry does not
/// check them, so sending them is not asserted here.) (Two workers: the client's
/// synchronous lookups block the one they run on until the registry, served here too, answers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_client_asks_a_registry_over_http_what_the_formats_need() {
    use eddy::registry::client::{Remote, SchemaRegistry};
    use eddy::registry::{Reference, Schema, SchemaType};
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let registry = Arc::new(Mutex::new(Registry::open(log).await.unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, rest::router(registry)).await });

    let remote = Remote::new(&format!("http://{address}"), Some("user:secret")).unwrap();
    assert_eq!(remote.latest("t-value").await.unwrap(), None);
    let proto = |text: &str, references| Schema { schema: text.into(), schema_type: SchemaType::Protobuf, references };
    let event = proto("syntax = \"proto3\"; message Event { int64 at = 1; }", vec![]);
    let event_id = remote.register("event.proto", event.clone()).await.unwrap();
    let reference = Reference { name: "event.proto".into(), subject: "event.proto".into(), version: 1 };
    let main =
        proto("syntax = \"proto3\"; import \"event.proto\"; message M { Event e = 1; }", vec![reference.clone()]);
    let id = remote.register("t-value", main.clone()).await.unwrap();
    assert_ne!(id, event_id);
    let latest = remote.latest("t-value").await.unwrap().unwrap();
    assert_eq!((latest.id, latest.version, latest.schema.references.clone()), (id, 1, vec![reference.clone()]));
    // The synchronous lookups the codecs make, from inside the runtime.
    assert_eq!(remote.schema_by_id(id).unwrap().schema, main.schema);
    assert_eq!(remote.referenced(&reference).unwrap().schema, event.schema);
    assert_eq!(remote.registered_id("t-value", &main).unwrap(), Some(id));
    let unknown = proto("syntax = \"proto3\"; message N { int32 x = 1; }", vec![]);
    assert_eq!(remote.registered_id("t-value", &unknown).unwrap(), None);
    assert_eq!(remote.schema_by_id(99).unwrap_err().status, 404);

    // A registry that is not there: a retryable error naming it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let down = Remote::new(&format!("http://{closed}"), None).unwrap();
    let error = down.latest("t-value").await.unwrap_err();
    assert_eq!(error.status, 503);
    assert!(error.message.contains("cannot be reached") && error.message.contains("retry"), "{error}");
}

/// A codec fetches a remote registry's schemas ahead of decoding (`Codec::prefetch`), and a
/// restarted sink its schema's id ahead of writing (`Registration::Restart`), waiting
/// without blocking its thread. Here one thread both serves the registry and decodes:
/// a blocking lookup would wait on itself forever.
#[tokio::test]
async fn a_codec_fetches_a_remote_registrys_schemas_ahead_without_blocking_its_thread() {
    use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema as Columns};
    use eddy::format::{FormatOptions, Formats, Registration, Subject};
    use eddy::registry::client::{RegistryRef, Remote};
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let registry = Arc::new(Mutex::new(Registry::open(log).await.unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, rest::router(registry)).await });

    let columns =
        Arc::new(Columns::new(vec![Field::new("ID", DataType::Int64, true), Field::new("NAME", DataType::Utf8, true)]));
    for format in ["AVRO", "PROTOBUF"] {
        let options = FormatOptions { subject: Some(Subject::new(format, false)), ..FormatOptions::default() };
        let remote = |url: &str| -> RegistryRef { Arc::new(Remote::new(url, None).unwrap()) };
        let writer = Formats::with_registry(remote(&url)).get(format).unwrap().codec(columns.clone(), options.clone());
        let writer = writer.unwrap();
        writer.prepare(Registration::Sink).await.unwrap();
        let batch = RecordBatch::try_new(
            columns.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringArray::from(vec!["a", "b"]))],
        )
        .unwrap();
        let payloads: Vec<_> = writer.encode(&batch).unwrap().into_iter().map(Option::unwrap).collect();
        // A query started again finds its sink's id ahead of writing, and writes the same.
        let restarted =
            Formats::with_registry(remote(&url)).get(format).unwrap().codec(columns.clone(), options.clone()).unwrap();
        restarted.prepare(Registration::Restart).await.unwrap();
        let again: Vec<_> = restarted.encode(&batch).unwrap().into_iter().map(Option::unwrap).collect();
        assert_eq!(again, payloads, "{format}");
        let payloads: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();

        // A reader that has met no id yet.
        let reader = Formats::with_registry(remote(&url)).get(format).unwrap().codec(columns.clone(), options.clone());
        let reader = reader.unwrap();
        reader.prefetch(&mut payloads.iter().copied()).await;
        let decoded = reader.decode(&payloads).unwrap();
        assert!(decoded.errors.is_empty(), "{format}: {:?}", decoded.errors);
        assert_eq!(decoded.batch.num_rows(), 2, "{format}");
        let names = decoded.batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((names.value(0), names.value(1), names.null_count()), ("a", "b", 0), "{format}");
    }
}

/// Confluent's IMPORT mode: schemas registered with the ids they had elsewhere.
#[tokio::test]
async fn in_import_mode_a_schema_keeps_the_id_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let client = serve(dir.path()).await;
    let schema = serde_json::json!({"schema": "\"string\"", "id": 42}).to_string();
    let (status, refused) = call(&client, "POST", "/subjects/t-value/versions", &schema).await;
    assert_eq!((status, refused["error_code"].clone()), (422, serde_json::json!(42205)));
    let import = serde_json::json!({"mode": "IMPORT"}).to_string();
    assert_eq!(call(&client, "PUT", "/mode/t-value", &import).await.0, 200);
    assert_eq!(
        call(&client, "POST", "/subjects/t-value/versions", &schema).await,
        (200, serde_json::json!({"id": 42}))
    );
    assert_eq!(call(&client, "GET", "/schemas/ids/42", "").await, (200, serde_json::json!({"schema": "\"string\""})));
    // Another schema cannot take an id that is taken.
    let other = serde_json::json!({"schema": "\"int\"", "id": 42}).to_string();
    let (status, taken) = call(&client, "POST", "/subjects/t-value/versions", &other).await;
    assert_eq!((status, taken["error_code"].clone()), (422, serde_json::json!(42207)));
}
