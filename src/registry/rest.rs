//! Confluent's Schema Registry REST API over a [`Registry`]: `/subjects`, `/schemas`,
//! `/config` and `/mode`, with Confluent's status codes, error codes and content type.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Reference, Registry, RegistryError, Schema, SchemaType, Version};

/// Confluent's content type for the registry's answers.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Shared = Arc<Mutex<Registry>>;

/// The API's routes over `registry`.
pub fn router(registry: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { answer(Ok(json!({}))) }))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", axum::routing::post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version).delete(delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(raw_schema))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(uses_of))
        .route("/schemas/types", get(|| async { answer(Ok(json!(["JSON", "PROTOBUF", "AVRO"]))) }))
        .route("/compatibility/subjects/{subject}/versions/{version}", axum::routing::post(compatibility))
        .route("/config", get(global_level).put(set_global_level))
        .route("/config/{subject}", get(subject_level).put(set_subject_level))
        .route("/mode", get(global_mode).put(set_global_mode))
        .route("/mode/{subject}", get(subject_mode).put(set_subject_mode))
        .with_state(registry)
}

/// A JSON answer in Confluent's content type, or its error entity.
fn answer(result: Result<Value, RegistryError>) -> Response {
    match result {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = json!({"error_code": e.code, "message": e.message});
            (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
        }
    }
}

fn to_value(value: impl serde::Serialize) -> Result<Value, RegistryError> {
    serde_json::to_value(value).map_err(|e| RegistryError::new(500, 50000, e.to_string()))
}

/// A request's schema: `{"schema": "...", "schemaType": "AVRO", "references": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    /// The id to register the schema with (Confluent's IMPORT mode only).
    id: Option<u32>,
}

impl SchemaRequest {
    fn into_schema(self) -> Result<Schema, RegistryError> {
        let schema = self.schema.ok_or_else(|| RegistryError::new(422, 42201, "Empty schema"))?;
        let schema_type = match &self.schema_type {
            Some(t) => SchemaType::parse(t)?,
            None => SchemaType::Avro,
        };
        Ok(Schema { schema, schema_type, references: self.references })
    }
}

/// A request body as JSON, or Confluent's answer to one that is not.
fn body<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, RegistryError> {
    serde_json::from_str(text).map_err(|e| RegistryError::new(422, 42201, format!("Unrecognized request body: {e}")))
}

fn id_of(text: &str) -> Result<u32, RegistryError> {
    text.parse().map_err(|_| RegistryError::new(404, 40403, format!("Schema {text} not found")))
}

async fn subjects(State(registry): State<Shared>) -> Response {
    answer(to_value(registry.lock().await.subjects()))
}

async fn register(State(registry): State<Shared>, Path(subject): Path<String>, text: String) -> Response {
    let result = async {
        let request = body::<SchemaRequest>(&text)?;
        let wanted = request.id;
        let schema = request.into_schema()?;
        let mut registry = registry.lock().await;
        let id = match wanted {
            // Migrating schemas with their ids, as Confluent's registry allows in IMPORT mode.
            Some(id) if registry.mode(Some(&subject)) == "IMPORT" => registry.import(&subject, schema, id).await?,
            Some(_) => {
                return Err(RegistryError::new(
                    422,
                    42205,
                    format!(
                        "Subject {subject} is not in import mode: a schema is registered with its id only in IMPORT mode"
                    ),
                ));
            }
            None => registry.register(&subject, schema).await?,
        };
        Ok(json!({"id": id}))
    };
    answer(result.await)
}

async fn lookup(State(registry): State<Shared>, Path(subject): Path<String>, text: String) -> Response {
    let result = async {
        let schema = body::<SchemaRequest>(&text)?.into_schema()?;
        to_value(registry.lock().await.lookup(&subject, &schema)?)
    };
    answer(result.await)
}

async fn versions(State(registry): State<Shared>, Path(subject): Path<String>) -> Response {
    answer(registry.lock().await.versions(&subject).and_then(to_value))
}

async fn version(State(registry): State<Shared>, Path((subject, version)): Path<(String, String)>) -> Response {
    let registry = registry.lock().await;
    answer(Version::parse(&version).and_then(|v| registry.version(&subject, v)).and_then(to_value))
}

/// The schema's text alone, as JSON.
async fn raw_schema(State(registry): State<Shared>, Path((subject, version)): Path<(String, String)>) -> Response {
    let registry = registry.lock().await;
    let found = Version::parse(&version).and_then(|v| registry.version(&subject, v));
    answer(found.map(|r| serde_json::from_str(&r.schema.schema).unwrap_or(Value::String(r.schema.schema))))
}

async fn schema_by_id(State(registry): State<Shared>, Path(id): Path<String>) -> Response {
    let registry = registry.lock().await;
    answer(id_of(&id).and_then(|id| registry.schema(id)).and_then(to_value))
}

async fn raw_schema_by_id(State(registry): State<Shared>, Path(id): Path<String>) -> Response {
    let registry = registry.lock().await;
    let found = id_of(&id).and_then(|id| registry.schema(id));
    answer(found.map(|s| serde_json::from_str(&s.schema).unwrap_or(Value::String(s.schema))))
}

async fn uses_of(State(registry): State<Shared>, Path(id): Path<String>) -> Response {
    let registry = registry.lock().await;
    let uses = id_of(&id).and_then(|id| registry.uses_of(id));
    answer(uses.map(|uses| {
        uses.into_iter().map(|(subject, version)| json!({"subject": subject, "version": version})).collect()
    }))
}

async fn delete_subject(State(registry): State<Shared>, Path(subject): Path<String>) -> Response {
    answer(registry.lock().await.delete_subject(&subject).await.and_then(to_value))
}

async fn delete_version(State(registry): State<Shared>, Path((subject, version)): Path<(String, String)>) -> Response {
    let result = async {
        let version = Version::parse(&version)?;
        to_value(registry.lock().await.delete_version(&subject, version).await?)
    };
    answer(result.await)
}

async fn compatibility(
    State(registry): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    text: String,
) -> Response {
    let result = async {
        let schema = body::<SchemaRequest>(&text)?.into_schema()?;
        let version = Version::parse(&version)?;
        registry.lock().await.compatible(&subject, version, &schema)
    };
    answer(result.await.map(|compatible| json!({"is_compatible": compatible})))
}

#[derive(Debug, Deserialize)]
struct LevelRequest {
    compatibility: String,
}

#[derive(Debug, Deserialize)]
struct ModeRequest {
    mode: String,
}

async fn global_level(State(registry): State<Shared>) -> Response {
    answer(Ok(json!({"compatibilityLevel": registry.lock().await.level(None)})))
}

async fn set_global_level(State(registry): State<Shared>, text: String) -> Response {
    let result = async {
        let request: LevelRequest = body(&text)?;
        registry.lock().await.set_level(None, &request.compatibility).await
    };
    answer(result.await.map(|level| json!({"compatibility": level})))
}

async fn subject_level(State(registry): State<Shared>, Path(subject): Path<String>) -> Response {
    let registry = registry.lock().await;
    answer(match registry.own_level(&subject) {
        Some(level) => Ok(json!({"compatibilityLevel": level})),
        None => Err(RegistryError::new(
            404,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )),
    })
}

async fn set_subject_level(State(registry): State<Shared>, Path(subject): Path<String>, text: String) -> Response {
    let result = async {
        let request: LevelRequest = body(&text)?;
        registry.lock().await.set_level(Some(&subject), &request.compatibility).await
    };
    answer(result.await.map(|level| json!({"compatibility": level})))
}

async fn global_mode(State(registry): State<Shared>) -> Response {
    answer(Ok(json!({"mode": registry.lock().await.mode(None)})))
}

async fn set_global_mode(State(registry): State<Shared>, text: String) -> Response {
    let result = async {
        let request: ModeRequest = body(&text)?;
        registry.lock().await.set_mode(None, &request.mode).await
    };
    answer(result.await.map(|mode| json!({"mode": mode})))
}

async fn subject_mode(State(registry): State<Shared>, Path(subject): Path<String>) -> Response {
    answer(Ok(json!({"mode": registry.lock().await.mode(Some(&subject))})))
}

async fn set_subject_mode(State(registry): State<Shared>, Path(subject): Path<String>, text: String) -> Response {
    let result = async {
        let request: ModeRequest = body(&text)?;
        registry.lock().await.set_mode(Some(&subject), &request.mode).await
    };
    answer(result.await.map(|mode| json!({"mode": mode})))
}
