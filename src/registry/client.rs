//! What the formats ask a schema registry: a subject's latest schema (to infer a source's
//! columns), a schema's id under a subject (registering it if need be), and a schema by id (to
//! read a record written with it).
//!
//! Two registries answer: the embedded one ([`Embedded`], in-process, over the session's log)
//! and any registry speaking Confluent's REST API ([`Remote`], `ksql.schema.registry.url`, with
//! `ksql.schema.registry.basic.auth.user.info`). Schemas by id are cached: an id's schema never
//! changes.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use tokio::sync::Mutex;

use super::{Registered, Registry, RegistryError, Schema, Schemas, Version};
use crate::http::Client;

/// A schema registry, as the formats use one.
pub trait SchemaRegistry: Send + Sync + std::fmt::Debug {
    /// The latest live version of `subject`; `None` when it has none.
    fn latest<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<Option<Registered>, RegistryError>>;

    /// The id of `schema` under `subject`, registering it as the subject's next version when
    /// it is not one of them (refused with the registry's 409 when incompatible).
    fn register<'a>(&'a self, subject: &'a str, schema: Schema) -> BoxFuture<'a, Result<u32, RegistryError>>;

    /// Registers `schema` under `subject` with the id `id` (Confluent's IMPORT mode; ksqlDB's
    /// test harness registers its topics' schemas so).
    fn import<'a>(&'a self, subject: &'a str, schema: Schema, id: u32) -> BoxFuture<'a, Result<u32, RegistryError>>;

    /// Sets the compatibility level of `subject`, or the global one.
    fn set_level<'a>(
        &'a self,
        subject: Option<&'a str>,
        level: &'a str,
    ) -> BoxFuture<'a, Result<String, RegistryError>>;

    /// The id `schema` has under `subject`, if registered there, without waiting on the
    /// registry when it is known here already (a restarted query's sink looks its id up).
    fn registered_id(&self, subject: &str, schema: &Schema) -> Result<Option<u32>, RegistryError>;

    /// The schema a reference names (a subject's version), without waiting on the registry
    /// when it is known here already.
    fn referenced(&self, reference: &super::Reference) -> Result<Schema, RegistryError>;

    /// Schema `id`, without waiting on the registry when it is known here already: this is
    /// called on the hot path, when a record names an id not met before. A remote registry
    /// is asked once per id, blocking the caller for that one request; a source fetches new
    /// ids ahead with [`schema`](Self::schema), so that decoding finds them here.
    fn schema_by_id(&self, id: u32) -> Result<Schema, RegistryError>;

    /// Schema `id`, and the schemas it refers to, waiting on the registry (not blocking a
    /// thread) when they are not known here yet.
    fn schema<'a>(&'a self, id: u32) -> BoxFuture<'a, Result<Schema, RegistryError>> {
        Box::pin(std::future::ready(self.schema_by_id(id)))
    }

    /// [`registered_id`](Self::registered_id), waiting on the registry (not blocking a
    /// thread) when it is not known here.
    fn find_id<'a>(
        &'a self,
        subject: &'a str,
        schema: &'a Schema,
    ) -> BoxFuture<'a, Result<Option<u32>, RegistryError>> {
        Box::pin(std::future::ready(self.registered_id(subject, schema)))
    }

    /// Whether lookups may wait on another process (worth fetching ahead).
    fn is_remote(&self) -> bool {
        false
    }

    /// The schema a reference names, waiting on the registry (not blocking a thread) when it
    /// is not known here yet.
    fn referenced_async<'a>(&'a self, reference: &'a super::Reference) -> BoxFuture<'a, Result<Schema, RegistryError>> {
        Box::pin(std::future::ready(self.referenced(reference)))
    }

    /// [`referenced_schemas`](super::referenced_schemas), waiting on the registry (not
    /// blocking a thread) for those not known here.
    fn resolve_references<'a>(
        &'a self,
        schema: &'a Schema,
    ) -> BoxFuture<'a, Result<Vec<(String, Schema)>, RegistryError>> {
        Box::pin(async move {
            let mut found: Vec<(String, Schema)> = Vec::new();
            let mut pending = schema.references.clone();
            while let Some(reference) = pending.pop() {
                if found.iter().any(|(name, _)| *name == reference.name) {
                    continue;
                }
                if found.len() >= super::MOST_REFERENCES {
                    return Err(super::too_many_references());
                }
                let referenced = self.referenced_async(&reference).await?;
                pending.extend(referenced.references.iter().cloned());
                found.push((reference.name.clone(), referenced));
            }
            Ok(found)
        })
    }
}

/// A registry shared.
pub type RegistryRef = Arc<dyn SchemaRegistry>;

/// The embedded registry, in-process.
#[derive(Clone)]
pub struct Embedded {
    registry: Arc<Mutex<Registry>>,
    schemas: Schemas,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Embedded")
    }
}

impl Embedded {
    /// A client of `registry` (which the HTTP API may serve too).
    pub async fn new(registry: Arc<Mutex<Registry>>) -> Embedded {
        let schemas = registry.lock().await.schemas();
        Embedded { registry, schemas }
    }

    /// The registry kept in `log`'s `_schemas` topic.
    pub async fn open(log: Arc<dyn crate::log::Log>) -> Result<Embedded, RegistryError> {
        let registry = Registry::open(log).await?;
        Ok(Embedded::new(Arc::new(Mutex::new(registry))).await)
    }

    /// The registry itself, to serve it over HTTP.
    pub fn registry(&self) -> Arc<Mutex<Registry>> {
        Arc::clone(&self.registry)
    }
}

impl SchemaRegistry for Embedded {
    fn latest<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<Option<Registered>, RegistryError>> {
        Box::pin(async move {
            match self.registry.lock().await.version(subject, Version::Latest) {
                Ok(found) => Ok(Some(found)),
                Err(e) if e.status == 404 => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn register<'a>(&'a self, subject: &'a str, schema: Schema) -> BoxFuture<'a, Result<u32, RegistryError>> {
        Box::pin(async move { self.registry.lock().await.register(subject, schema).await })
    }

    fn import<'a>(&'a self, subject: &'a str, schema: Schema, id: u32) -> BoxFuture<'a, Result<u32, RegistryError>> {
        Box::pin(async move { self.registry.lock().await.import(subject, schema, id).await })
    }

    fn set_level<'a>(
        &'a self,
        subject: Option<&'a str>,
        level: &'a str,
    ) -> BoxFuture<'a, Result<String, RegistryError>> {
        Box::pin(async move { self.registry.lock().await.set_level(subject, level).await })
    }

    fn schema_by_id(&self, id: u32) -> Result<Schema, RegistryError> {
        self.schemas.get(id).ok_or_else(|| RegistryError::new(404, 40403, format!("Schema {id} not found")))
    }

    fn referenced(&self, reference: &super::Reference) -> Result<Schema, RegistryError> {
        self.schemas.referenced(reference)
    }

    fn registered_id(&self, _subject: &str, schema: &Schema) -> Result<Option<u32>, RegistryError> {
        // One text has one id, whatever the subject.
        Ok(self.schemas.id_of(schema))
    }
}

/// A registry over HTTP, speaking Confluent's REST API.
#[derive(Debug, Clone)]
pub struct Remote {
    url: String,
    client: Client,
    /// Schemas met, by id.
    cache: Arc<RwLock<BTreeMap<u32, Schema>>>,
    /// Schemas referred to, by subject and version.
    references: Arc<RwLock<BTreeMap<(String, i32), Schema>>>,
}

/// Confluent's content type, which its registry (and Eddy's) answers in.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl Remote {
    /// A client of the registry at `url` (`http://host[:port]`, port 8081 by default), with
    /// `user_info` (`user:password`) sent as basic authentication when given.
    pub fn new(url: &str, user_info: Option<&str>) -> Result<Remote, RegistryError> {
        let refused = |why: String| RegistryError::new(500, 50001, format!("ksql.schema.registry.url: {why}"));
        let mut parsed = url::Url::parse(url).map_err(|e| refused(format!("{url} is not a URL: {e}")))?;
        if parsed.port().is_none() {
            let _ = parsed.set_port(Some(8081));
        }
        if let Some((user, password)) = user_info.and_then(|info| info.split_once(':')) {
            let _ = parsed.set_username(user);
            let _ = parsed.set_password(Some(password));
        }
        let client = Client::new(parsed.as_str()).map_err(refused)?;
        Ok(Remote { url: url.to_owned(), client, cache: Arc::default(), references: Arc::default() })
    }

    /// Sends a request and reads the answer as JSON, a registry's error as its error.
    async fn call(&self, method: &str, path: &str, body: &str) -> Result<serde_json::Value, RegistryError> {
        let unreachable = |why: String| {
            RegistryError::new(
                503,
                50003,
                format!("the schema registry at {} cannot be reached ({why}); retry when it is up", self.url),
            )
        };
        let response = self.client.request(method, path, body, CONTENT_TYPE).await.map_err(unreachable)?;
        let status = response.status;
        let text = response.text().await.map_err(unreachable)?;
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        if status >= 300 {
            let code = json["error_code"].as_u64().and_then(|c| u32::try_from(c).ok()).unwrap_or(u32::from(status));
            let message = json["message"].as_str().map_or_else(|| json.to_string(), str::to_owned);
            return Err(RegistryError::new(status, code, message));
        }
        Ok(json)
    }

    async fn fetch_schema(&self, id: u32) -> Result<Schema, RegistryError> {
        let json = self.call("GET", &format!("/schemas/ids/{id}"), "").await?;
        let schema: Schema = serde_json::from_value(json)
            .map_err(|e| RegistryError::new(502, 50002, format!("the registry's answer for id {id}: {e}")))?;
        self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, schema.clone());
        Ok(schema)
    }

    async fn fetch_referenced(&self, reference: &super::Reference) -> Result<Schema, RegistryError> {
        let path = format!("/subjects/{}/versions/{}", segment(&reference.subject), reference.version);
        let json = self.call("GET", &path, "").await?;
        let schema: Schema = serde_json::from_value(json)
            .map_err(|e| RegistryError::new(502, 50002, format!("the registry's answer for {path}: {e}")))?;
        let key = (reference.subject.clone(), reference.version);
        self.references.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, schema.clone());
        Ok(schema)
    }

    /// The id of a schema met before.
    fn cached_id(&self, schema: &Schema) -> Option<u32> {
        let cached = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.iter().find(|(_, known)| super::same_schema(known, schema)).map(|(id, _)| *id)
    }

    /// The id `schema` has under `subject`, asked of the registry (`POST /subjects/{s}`).
    async fn ask_id(&self, subject: &str, schema: &Schema) -> Result<Option<u32>, RegistryError> {
        let body = serde_json::to_string(schema).unwrap_or_default();
        match self.call("POST", &format!("/subjects/{}", segment(subject)), &body).await {
            Ok(json) => {
                let id = json["id"].as_u64().and_then(|id| u32::try_from(id).ok());
                if let Some(id) = id {
                    self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, schema.clone());
                }
                Ok(id)
            }
            Err(e) if e.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn cached_reference(&self, reference: &super::Reference) -> Option<Schema> {
        let cached = self.references.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.get(&(reference.subject.clone(), reference.version)).cloned()
    }
}

/// A subject as a path segment.
fn segment(subject: &str) -> String {
    url::form_urlencoded::byte_serialize(subject.as_bytes()).collect()
}

impl SchemaRegistry for Remote {
    fn latest<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<Option<Registered>, RegistryError>> {
        Box::pin(async move {
            let json = match self.call("GET", &format!("/subjects/{}/versions/latest", segment(subject)), "").await {
                Ok(json) => json,
                Err(e) if e.status == 404 => return Ok(None),
                Err(e) => return Err(e),
            };
            let bad =
                |why: String| RegistryError::new(502, 50002, format!("the registry's answer for {subject}: {why}"));
            let schema: Schema = serde_json::from_value(json.clone()).map_err(|e| bad(e.to_string()))?;
            let id = json["id"].as_u64().and_then(|id| u32::try_from(id).ok()).ok_or_else(|| bad("no id".into()))?;
            let version = json["version"].as_i64().and_then(|v| i32::try_from(v).ok()).unwrap_or(1);
            Ok(Some(Registered { subject: subject.to_owned(), version, id, schema }))
        })
    }

    fn register<'a>(&'a self, subject: &'a str, schema: Schema) -> BoxFuture<'a, Result<u32, RegistryError>> {
        Box::pin(async move {
            let body = serde_json::to_string(&schema).unwrap_or_default();
            let json = self.call("POST", &format!("/subjects/{}/versions", segment(subject)), &body).await?;
            let id = json["id"].as_u64().and_then(|id| u32::try_from(id).ok()).ok_or_else(|| {
                RegistryError::new(502, 50002, format!("the registry gave no id for {subject}: {json}"))
            })?;
            self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, schema);
            Ok(id)
        })
    }

    fn import<'a>(&'a self, subject: &'a str, schema: Schema, id: u32) -> BoxFuture<'a, Result<u32, RegistryError>> {
        Box::pin(async move {
            let mut body = serde_json::to_value(&schema).unwrap_or_default();
            body["id"] = serde_json::json!(id);
            self.call("POST", &format!("/subjects/{}/versions", segment(subject)), &body.to_string()).await?;
            self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, schema);
            Ok(id)
        })
    }

    fn set_level<'a>(
        &'a self,
        subject: Option<&'a str>,
        level: &'a str,
    ) -> BoxFuture<'a, Result<String, RegistryError>> {
        Box::pin(async move {
            let path = match subject {
                Some(subject) => format!("/config/{}", segment(subject)),
                None => "/config".to_owned(),
            };
            let json = self.call("PUT", &path, &serde_json::json!({"compatibility": level}).to_string()).await?;
            Ok(json["compatibility"].as_str().unwrap_or(level).to_owned())
        })
    }

    fn referenced(&self, reference: &super::Reference) -> Result<Schema, RegistryError> {
        match self.cached_reference(reference) {
            Some(schema) => Ok(schema),
            None => blocking(|| self.fetch_referenced(reference)),
        }
    }

    fn registered_id(&self, subject: &str, schema: &Schema) -> Result<Option<u32>, RegistryError> {
        match self.cached_id(schema) {
            Some(id) => Ok(Some(id)),
            None => blocking(|| self.ask_id(subject, schema)),
        }
    }

    fn find_id<'a>(
        &'a self,
        subject: &'a str,
        schema: &'a Schema,
    ) -> BoxFuture<'a, Result<Option<u32>, RegistryError>> {
        Box::pin(async move {
            match self.cached_id(schema) {
                Some(id) => Ok(Some(id)),
                None => self.ask_id(subject, schema).await,
            }
        })
    }

    fn schema_by_id(&self, id: u32) -> Result<Schema, RegistryError> {
        if let Some(schema) = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id) {
            return Ok(schema.clone());
        }
        blocking(|| self.fetch_schema(id))
    }

    fn schema<'a>(&'a self, id: u32) -> BoxFuture<'a, Result<Schema, RegistryError>> {
        Box::pin(async move {
            let cached = self.cache.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id).cloned();
            let schema = match cached {
                Some(schema) => schema,
                None => self.fetch_schema(id).await?,
            };
            // And what it refers to, and so on, cached for the codecs' synchronous lookups.
            self.resolve_references(&schema).await?;
            Ok(schema)
        })
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn referenced_async<'a>(&'a self, reference: &'a super::Reference) -> BoxFuture<'a, Result<Schema, RegistryError>> {
        Box::pin(async move {
            match self.cached_reference(reference) {
                Some(schema) => Ok(schema),
                None => self.fetch_referenced(reference).await,
            }
        })
    }
}

/// Runs a request to completion from synchronous code (a codec), once per id: on a thread of
/// its own with a runtime of its own, so that it can be waited for from anywhere.
fn blocking<F, T>(request: impl FnOnce() -> F + Send) -> Result<T, RegistryError>
where
    F: std::future::Future<Output = Result<T, RegistryError>>,
    T: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| RegistryError::new(500, 50001, format!("cannot ask the registry: {e}")))?;
                runtime.block_on(request())
            })
            .join()
            .unwrap_or_else(|_| Err(RegistryError::new(500, 50001, "asking the registry failed")))
    })
}

/// The registry a session's formats use: the one at `ksql.schema.registry.url` when set, else
/// the embedded one over `log`.
pub async fn for_properties(
    log: Arc<dyn crate::log::Log>,
    properties: &BTreeMap<String, String>,
) -> Result<RegistryRef, RegistryError> {
    match properties.get("ksql.schema.registry.url").filter(|url| !url.trim().is_empty()) {
        Some(url) => Ok(Arc::new(Remote::new(
            url.trim(),
            properties.get("ksql.schema.registry.basic.auth.user.info").map(String::as_str),
        )?)),
        None => Ok(Arc::new(Embedded::open(log).await?)),
    }
}
