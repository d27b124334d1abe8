//! A schema registry that speaks Confluent's REST API, kept in a topic as Confluent's is.
//!
//! Subjects hold versions of schemas; a schema registered under several subjects has one id.
//! Every change is a record of the internal topic `_schemas` (one partition), keyed and
//! valued in JSON as Confluent's registry writes them, so the registry is back after a
//! restart, on the embedded log and on Kafka alike ([`Registry::open`] reads the topic).
//! [`rest`] serves it over HTTP.
//!
//! Registering checks a schema against the subject's earlier versions at the subject's
//! compatibility level (BACKWARD by default, as Confluent's), by each kind's rules
//! ([`compat`]), and refuses an incompatible one with Confluent's 409.

pub mod avro;
pub mod client;
mod compat;
pub mod protobuf;
pub mod rest;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::log::{Log, LogError, NewRecord, TopicSpec};

/// The topic the registry keeps its changes in.
pub const TOPIC: &str = "_schemas";

/// A schema's kind (`schemaType`; AVRO when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    #[default]
    Avro,
    Protobuf,
    Json,
}

impl SchemaType {
    pub fn parse(text: &str) -> Result<SchemaType, RegistryError> {
        match text.to_ascii_uppercase().as_str() {
            "AVRO" => Ok(SchemaType::Avro),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            "JSON" => Ok(SchemaType::Json),
            other => Err(RegistryError::new(422, 42201, format!("Invalid schema type {other}"))),
        }
    }

    fn is_avro(&self) -> bool {
        *self == SchemaType::Avro
    }
}

/// A schema as registered: its text, kind and references to other subjects' schemas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    pub schema: String,
    #[serde(default, skip_serializing_if = "SchemaType::is_avro")]
    pub schema_type: SchemaType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

/// A schema another refers to by name, as a subject's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// A failure as Confluent's registry answers it: an HTTP status and an error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (error {code})")]
pub struct RegistryError {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl RegistryError {
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> RegistryError {
        RegistryError { status, code, message: message.into() }
    }

    fn subject_not_found(subject: &str) -> RegistryError {
        RegistryError::new(404, 40401, format!("Subject '{subject}' not found."))
    }

    fn version_not_found(version: &str) -> RegistryError {
        RegistryError::new(404, 40402, format!("Version {version} not found."))
    }

    fn schema_not_found() -> RegistryError {
        RegistryError::new(404, 40403, "Schema not found")
    }

    /// The log behind the registry failed: a server error, worth retrying.
    fn store(error: LogError) -> RegistryError {
        RegistryError::new(500, 50001, format!("Error in the backend data store: {error}"))
    }
}

/// Which version of a subject: a number or the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Number(i32),
    Latest,
}

impl Version {
    pub fn parse(text: &str) -> Result<Version, RegistryError> {
        if text == "latest" || text == "-1" {
            return Ok(Version::Latest);
        }
        match text.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(Version::Number(n)),
            _ => Err(RegistryError::new(
                422,
                42202,
                format!(
                    "The specified version '{text}' is not a valid version id. Allowed values are between \
                     [1, 2^31-1] and the string \"latest\""
                ),
            )),
        }
    }
}

/// A subject's version, as `GET /subjects/{s}/versions/{v}` answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub subject: String,
    pub version: i32,
    pub id: u32,
    #[serde(flatten)]
    pub schema: Schema,
}

/// One record of the `_schemas` topic: a version registered (or deleted), or a
/// compatibility level or mode set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "UPPERCASE")]
enum Key {
    Schema { subject: String, version: i32 },
    Config { subject: Option<String> },
    Mode { subject: Option<String> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaValue {
    subject: String,
    version: i32,
    id: u32,
    #[serde(flatten)]
    schema: Schema,
    deleted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigValue {
    compatibility_level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ModeValue {
    mode: String,
}

/// Compatibility levels Confluent's registry knows.
pub const LEVELS: [&str; 7] =
    ["NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"];

/// Modes Confluent's registry knows.
pub const MODES: [&str; 3] = ["READWRITE", "READONLY", "IMPORT"];

/// The registry's state, rebuilt from the topic.
#[derive(Debug, Default)]
struct State {
    /// Each subject's versions in order: (version, schema id, deleted).
    subjects: BTreeMap<String, Vec<(i32, u32, bool)>>,
    /// Schemas by id (shared with the registry's clients, which read it without waiting).
    schemas: Schemas,
    /// Compatibility levels: `None` is the global one.
    levels: BTreeMap<Option<String>, String>,
    modes: BTreeMap<Option<String>, String>,
}

impl State {
    fn apply(&mut self, key: Key, value: Option<serde_json::Value>) -> Result<(), serde_json::Error> {
        match key {
            Key::Schema { subject, version } => {
                let versions = self.subjects.entry(subject.clone()).or_default();
                versions.retain(|(v, _, _)| *v != version);
                if let Some(value) = value {
                    let value: SchemaValue = serde_json::from_value(value)?;
                    self.schemas.insert_version(&subject, version, value.id);
                    self.schemas.insert(value.id, value.schema);
                    versions.push((version, value.id, value.deleted));
                    versions.sort_by_key(|(v, _, _)| *v);
                }
                if versions.is_empty() {
                    self.subjects.remove(&subject);
                }
            }
            Key::Config { subject } => match value {
                Some(value) => {
                    self.levels.insert(subject, serde_json::from_value::<ConfigValue>(value)?.compatibility_level);
                }
                None => {
                    self.levels.remove(&subject);
                }
            },
            Key::Mode { subject } => match value {
                Some(value) => {
                    self.modes.insert(subject, serde_json::from_value::<ModeValue>(value)?.mode);
                }
                None => {
                    self.modes.remove(&subject);
                }
            },
        }
        Ok(())
    }

    /// The id a schema of this text has, if any subject registered it.
    fn id_of(&self, schema: &Schema) -> Option<u32> {
        self.schemas.id_of(schema)
    }
}

/// Schemas by id, shared: an id's schema never changes once given, so readers that must not
/// wait (a codec meeting a new id on the hot path) read it here, not through the registry.
/// Subjects' versions are here too, for schemas that refer to others (a version's schema
/// does not change either; a deleted one stays readable, as Confluent's do by id).
#[derive(Debug, Clone, Default)]
pub struct Schemas {
    by_id: Arc<std::sync::RwLock<BTreeMap<u32, Schema>>>,
    by_version: Arc<std::sync::RwLock<BTreeMap<(String, i32), u32>>>,
}

impl Schemas {
    /// Schema `id`, if registered.
    pub fn get(&self, id: u32) -> Option<Schema> {
        self.read().get(&id).cloned()
    }

    /// The schema version `version` of `subject` has, if registered.
    pub fn version(&self, subject: &str, version: i32) -> Option<Schema> {
        let id = *self
            .by_version
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(subject.to_owned(), version))?;
        self.get(id)
    }

    /// The schema `reference` names (a subject's version).
    pub fn referenced(&self, reference: &Reference) -> Result<Schema, RegistryError> {
        self.version(&reference.subject, reference.version).ok_or_else(|| {
            RegistryError::new(404, 40402, format!("Version {} of {} not found.", reference.version, reference.subject))
        })
    }

    fn insert(&self, id: u32, schema: Schema) {
        self.by_id.write().unwrap_or_else(std::sync::PoisonError::into_inner).entry(id).or_insert(schema);
    }

    fn insert_version(&self, subject: &str, version: i32, id: u32) {
        self.by_version
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((subject.to_owned(), version), id);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Schema>> {
        self.by_id.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The id of a schema of this text, if any subject registered it.
    pub fn id_of(&self, schema: &Schema) -> Option<u32> {
        self.read().iter().find(|(_, s)| same_schema(s, schema)).map(|(id, _)| *id)
    }

    fn next_id(&self) -> u32 {
        self.read().keys().next_back().map_or(1, |id| id + 1)
    }
}

/// How many schemas a schema may refer to, directly or not.
pub const MOST_REFERENCES: usize = 64;

/// The error of a schema that refers to more than [`MOST_REFERENCES`] others.
pub(crate) fn too_many_references() -> RegistryError {
    RegistryError::new(422, 42201, format!("a schema refers to more than {MOST_REFERENCES} others"))
}

/// The schemas `schema` refers to, and those they refer to, each once, with the name it is
/// referred to by, found by `resolve`.
pub fn referenced_schemas(
    schema: &Schema,
    resolve: impl Fn(&Reference) -> Result<Schema, RegistryError>,
) -> Result<Vec<(String, Schema)>, RegistryError> {
    let mut found: Vec<(String, Schema)> = Vec::new();
    let mut pending = schema.references.clone();
    while let Some(reference) = pending.pop() {
        if found.iter().any(|(name, _)| *name == reference.name) {
            continue;
        }
        if found.len() >= MOST_REFERENCES {
            return Err(too_many_references());
        }
        let referenced = resolve(&reference)?;
        pending.extend(referenced.references.iter().cloned());
        found.push((reference.name.clone(), referenced));
    }
    Ok(found)
}

/// Whether two schemas are the same: of one kind, with the same references, and texts equal
/// as JSON values for AVRO and JSON (whitespace and key order aside), or equal once trimmed.
pub(crate) fn same_schema(a: &Schema, b: &Schema) -> bool {
    if a.schema_type != b.schema_type || a.references != b.references {
        return false;
    }
    match a.schema_type {
        SchemaType::Protobuf => a.schema.trim() == b.schema.trim(),
        _ => match (
            serde_json::from_str::<serde_json::Value>(&a.schema),
            serde_json::from_str::<serde_json::Value>(&b.schema),
        ) {
            (Ok(x), Ok(y)) => x == y,
            _ => a.schema.trim() == b.schema.trim(),
        },
    }
}

/// The registry (see the module's documentation).
pub struct Registry {
    log: Arc<dyn Log>,
    state: State,
}

impl Registry {
    /// The registry kept in `log`'s `_schemas` topic, created if missing and read through.
    pub async fn open(log: Arc<dyn Log>) -> Result<Registry, RegistryError> {
        match log.create_topic(TOPIC, &TopicSpec::new(1).with_config("cleanup.policy", "compact")).await {
            Ok(()) | Err(LogError::TopicExists(_)) => {}
            Err(e) => return Err(RegistryError::store(e)),
        }
        let mut state = State::default();
        let mut offset = log.earliest_offset(TOPIC, 0).await.map_err(RegistryError::store)?;
        loop {
            let fetch = log.read(TOPIC, 0, offset, 1 << 20).await.map_err(RegistryError::store)?;
            let Some(last) = fetch.records.last() else { break };
            offset = last.offset + 1;
            for record in fetch.records {
                let Some(key) = record.key.as_deref().and_then(|k| serde_json::from_slice::<Key>(k).ok()) else {
                    continue; // not a record of ours (Confluent's NOOP keys among them)
                };
                let value = match record.value.as_deref() {
                    Some(bytes) => match serde_json::from_slice(bytes) {
                        Ok(value) => Some(value),
                        Err(_) => continue,
                    },
                    None => None,
                };
                if let Err(e) = state.apply(key, value) {
                    tracing::warn!(offset = record.offset, error = %e, "unreadable record in {TOPIC}, skipped");
                }
            }
        }
        Ok(Registry { log, state })
    }

    /// Appends a change to the topic, then applies it.
    async fn write(&mut self, key: Key, value: Option<serde_json::Value>) -> Result<(), RegistryError> {
        let key_bytes = serde_json::to_vec(&key).map_err(|e| RegistryError::new(500, 50000, e.to_string()))?;
        let value_bytes = value.as_ref().map(|v| Bytes::from(v.to_string()));
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let record = NewRecord::new(now, Some(Bytes::from(key_bytes)), value_bytes);
        self.log.append(TOPIC, 0, &[record]).await.map_err(RegistryError::store)?;
        self.state.apply(key, value).map_err(|e| RegistryError::new(500, 50000, e.to_string()))
    }

    fn writable(&self, subject: &str) -> Result<(), RegistryError> {
        if self.mode(Some(subject)) == "READONLY" {
            return Err(RegistryError::new(422, 42205, format!("Subject {subject} is in read-only mode")));
        }
        Ok(())
    }

    /// Registers `schema` under `subject`: its id, the same as before when this subject (or
    /// another) has it already.
    pub async fn register(&mut self, subject: &str, schema: Schema) -> Result<u32, RegistryError> {
        self.register_as(subject, schema, None).await
    }

    /// Registers `schema` under `subject` with the id `id`, as Confluent's registry does in
    /// IMPORT mode (migrating schemas with their ids, unchecked for compatibility): refused
    /// when `id` is another schema's.
    pub async fn import(&mut self, subject: &str, schema: Schema, id: u32) -> Result<u32, RegistryError> {
        self.register_as(subject, schema, Some(id)).await
    }

    async fn register_as(&mut self, subject: &str, schema: Schema, wanted: Option<u32>) -> Result<u32, RegistryError> {
        validate(&schema, |r| self.state.schemas.referenced(r))?;
        if let Ok(found) = self.lookup(subject, &schema)
            && wanted.is_none_or(|id| id == found.id)
        {
            return Ok(found.id);
        }
        self.writable(subject)?;
        // Importing (schemas migrated with their ids) checks no compatibility, as Confluent's.
        if wanted.is_none() {
            self.check_compatible(subject, &schema, None)?;
        }
        let id = match (wanted, self.state.id_of(&schema)) {
            (Some(id), _) => match self.state.schemas.get(id) {
                Some(known) if !same_schema(&known, &schema) => {
                    return Err(RegistryError::new(
                        422,
                        42207,
                        format!("Overwrite new schema with id {id} is not permitted."),
                    ));
                }
                _ => id,
            },
            (None, Some(id)) => id,
            (None, None) => self.state.schemas.next_id(),
        };
        let version = self.state.subjects.get(subject).and_then(|v| v.last()).map_or(1, |(v, _, _)| v + 1);
        let value = SchemaValue { subject: subject.to_owned(), version, id, schema, deleted: false };
        let value = serde_json::to_value(&value).map_err(|e| RegistryError::new(500, 50000, e.to_string()))?;
        self.write(Key::Schema { subject: subject.to_owned(), version }, Some(value)).await?;
        Ok(id)
    }

    /// Whether `schema` may follow `subject`'s versions at the subject's compatibility level:
    /// against the latest (or, `_TRANSITIVE`, every) live version, or only `against`.
    fn check_compatible(&self, subject: &str, schema: &Schema, against: Option<Version>) -> Result<(), RegistryError> {
        let level = self.level(Some(subject));
        if level == "NONE" {
            return Ok(());
        }
        let earlier: Vec<Registered> = match against {
            Some(version) => vec![self.version(subject, version)?],
            None => {
                let Ok(versions) = self.live_versions(subject) else { return Ok(()) };
                let chosen =
                    if level.ends_with("_TRANSITIVE") { &versions[..] } else { &versions[versions.len() - 1..] };
                chosen.iter().map(|(v, _)| self.version(subject, Version::Number(*v))).collect::<Result<_, _>>()?
            }
        };
        let resolve = |reference: &Reference| self.state.schemas.referenced(reference);
        for old in earlier {
            let backward = || compat::can_read(&old.schema, schema, &resolve);
            let forward = || compat::can_read(schema, &old.schema, &resolve);
            let checked = match level.trim_end_matches("_TRANSITIVE") {
                "BACKWARD" => backward(),
                "FORWARD" => forward(),
                _ => backward().and_then(|_| forward()),
            };
            if let Err(e) = checked {
                return Err(RegistryError::new(
                    409,
                    409,
                    format!(
                        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", \
                         details: [{e}]"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether `schema` is compatible with `subject`'s version `version` at the subject's level
    /// (`POST /compatibility/subjects/{s}/versions/{v}`).
    pub fn compatible(&self, subject: &str, version: Version, schema: &Schema) -> Result<bool, RegistryError> {
        validate(schema, |r| self.state.schemas.referenced(r))?;
        match self.check_compatible(subject, schema, Some(version)) {
            Ok(()) => Ok(true),
            Err(e) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The version of `subject` that has `schema`.
    pub fn lookup(&self, subject: &str, schema: &Schema) -> Result<Registered, RegistryError> {
        let versions = self.live_versions(subject)?;
        versions
            .iter()
            .rev()
            .find_map(|(version, id)| {
                let known = self.state.schemas.get(*id)?;
                same_schema(&known, schema).then(|| Registered {
                    subject: subject.to_owned(),
                    version: *version,
                    id: *id,
                    schema: known,
                })
            })
            .ok_or_else(RegistryError::schema_not_found)
    }

    fn live_versions(&self, subject: &str) -> Result<Vec<(i32, u32)>, RegistryError> {
        let versions: Vec<(i32, u32)> = self
            .state
            .subjects
            .get(subject)
            .map(|v| v.iter().filter(|(_, _, deleted)| !deleted).map(|(v, id, _)| (*v, *id)).collect())
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(RegistryError::subject_not_found(subject));
        }
        Ok(versions)
    }

    /// Subjects with a live version, sorted.
    pub fn subjects(&self) -> Vec<String> {
        self.state
            .subjects
            .iter()
            .filter(|(_, versions)| versions.iter().any(|(_, _, deleted)| !deleted))
            .map(|(subject, _)| subject.clone())
            .collect()
    }

    pub fn versions(&self, subject: &str) -> Result<Vec<i32>, RegistryError> {
        Ok(self.live_versions(subject)?.into_iter().map(|(v, _)| v).collect())
    }

    pub fn version(&self, subject: &str, version: Version) -> Result<Registered, RegistryError> {
        let versions = self.live_versions(subject)?;
        let found = match version {
            Version::Latest => versions.last(),
            Version::Number(n) => versions.iter().find(|(v, _)| *v == n),
        };
        let Some((version, id)) = found else {
            let shown = match version {
                Version::Latest => "latest".to_owned(),
                Version::Number(n) => n.to_string(),
            };
            return Err(RegistryError::version_not_found(&shown));
        };
        let schema = self.state.schemas.get(*id).ok_or_else(RegistryError::schema_not_found)?;
        Ok(Registered { subject: subject.to_owned(), version: *version, id: *id, schema })
    }

    pub fn schema(&self, id: u32) -> Result<Schema, RegistryError> {
        self.state.schemas.get(id).ok_or_else(|| RegistryError::new(404, 40403, format!("Schema {id} not found")))
    }

    /// The schemas by id, as a shared view that follows the registry.
    pub fn schemas(&self) -> Schemas {
        self.state.schemas.clone()
    }

    /// The subjects and versions that have schema `id`.
    pub fn uses_of(&self, id: u32) -> Result<Vec<(String, i32)>, RegistryError> {
        self.schema(id)?;
        Ok(self
            .state
            .subjects
            .iter()
            .flat_map(|(subject, versions)| {
                versions.iter().filter(|(_, i, deleted)| *i == id && !deleted).map(|(v, _, _)| (subject.clone(), *v))
            })
            .collect())
    }

    /// Deletes a subject's live versions (soft: the ids stay readable); returns them.
    pub async fn delete_subject(&mut self, subject: &str) -> Result<Vec<i32>, RegistryError> {
        self.writable(subject)?;
        let versions = self.live_versions(subject)?;
        for (version, _) in &versions {
            self.delete_version(subject, Version::Number(*version)).await?;
        }
        Ok(versions.into_iter().map(|(v, _)| v).collect())
    }

    /// Deletes one version (soft); returns its number.
    pub async fn delete_version(&mut self, subject: &str, version: Version) -> Result<i32, RegistryError> {
        self.writable(subject)?;
        let found = self.version(subject, version)?;
        let value = SchemaValue {
            subject: subject.to_owned(),
            version: found.version,
            id: found.id,
            schema: found.schema,
            deleted: true,
        };
        let value = serde_json::to_value(&value).map_err(|e| RegistryError::new(500, 50000, e.to_string()))?;
        self.write(Key::Schema { subject: subject.to_owned(), version: found.version }, Some(value)).await?;
        Ok(found.version)
    }

    /// The compatibility level of `subject` (its own, else the global one), or the global one.
    pub fn level(&self, subject: Option<&str>) -> String {
        setting(&self.state.levels, subject, "BACKWARD")
    }

    /// A subject's own compatibility level, if it has one.
    pub fn own_level(&self, subject: &str) -> Option<String> {
        self.state.levels.get(&Some(subject.to_owned())).cloned()
    }

    pub async fn set_level(&mut self, subject: Option<&str>, level: &str) -> Result<String, RegistryError> {
        let level = level.to_ascii_uppercase();
        if !LEVELS.contains(&level.as_str()) {
            return Err(RegistryError::new(
                422,
                42203,
                "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive",
            ));
        }
        let value = serde_json::json!({"compatibilityLevel": level});
        self.write(Key::Config { subject: subject.map(str::to_owned) }, Some(value)).await?;
        Ok(level)
    }

    pub fn mode(&self, subject: Option<&str>) -> String {
        setting(&self.state.modes, subject, "READWRITE")
    }

    pub async fn set_mode(&mut self, subject: Option<&str>, mode: &str) -> Result<String, RegistryError> {
        let mode = mode.to_ascii_uppercase();
        if !MODES.contains(&mode.as_str()) {
            return Err(RegistryError::new(
                422,
                42204,
                "Invalid mode. Valid values are READWRITE, READONLY and IMPORT",
            ));
        }
        self.write(Key::Mode { subject: subject.map(str::to_owned) }, Some(serde_json::json!({"mode": mode}))).await?;
        Ok(mode)
    }
}

/// A subject's own setting (compatibility level, mode), else the global one, else `default`.
fn setting(settings: &BTreeMap<Option<String>, String>, subject: Option<&str>, default: &str) -> String {
    subject
        .and_then(|s| settings.get(&Some(s.to_owned())))
        .or_else(|| settings.get(&None))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

/// Refuses a schema that cannot be one: an AVRO schema must parse as Avro, a JSON one must be
/// JSON, a PROTOBUF one must compile (with the schemas it refers to, found by `resolve`).
fn validate(
    schema: &Schema,
    resolve: impl Fn(&Reference) -> Result<Schema, RegistryError>,
) -> Result<(), RegistryError> {
    let invalid = |why: String| RegistryError::new(422, 42201, format!("Invalid schema {}: {why}", schema.schema));
    match schema.schema_type {
        SchemaType::Avro => parse_avro(schema, &resolve).map(|_| ()),
        SchemaType::Json => match serde_json::from_str::<serde_json::Value>(&schema.schema) {
            Ok(_) => Ok(()),
            Err(e) => Err(invalid(e.to_string())),
        },
        SchemaType::Protobuf if schema.schema.trim().is_empty() => Err(invalid("empty".into())),
        SchemaType::Protobuf => protobuf::compile_registered(schema, resolve).map(|_| ()).map_err(invalid),
    }
}

/// An AVRO schema parsed, with the named types it takes from the schemas it refers to (found
/// by `resolve`).
fn parse_avro(
    schema: &Schema,
    resolve: &dyn Fn(&Reference) -> Result<Schema, RegistryError>,
) -> Result<apache_avro::Schema, RegistryError> {
    let invalid = |why: String| RegistryError::new(422, 42201, format!("Invalid schema {}: {why}", schema.schema));
    if schema.references.is_empty() {
        return parse_avro_text(&schema.schema).map_err(invalid);
    }
    let whole = avro::self_contained(schema, resolve).map_err(invalid)?;
    parse_avro_text(&whole.to_string()).map_err(invalid)
}

/// An Avro schema's text parsed by `apache-avro`. It panics on a named type whose name is
/// invalid, so names are checked first (and a panic is still caught): such a schema is refused
/// as any invalid one is.
pub fn parse_avro_text(text: &str) -> Result<apache_avro::Schema, String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(bad) = invalid_name(&json)
    {
        return Err(format!("Invalid schema name {bad}"));
    }
    match std::panic::catch_unwind(|| apache_avro::Schema::parse_str(text)) {
        Ok(parsed) => parsed.map_err(|e| e.to_string()),
        Err(panic) => Err(crate::error::panic_message(panic.as_ref())),
    }
}

/// The first name of a named type (record, enum, fixed) in `schema` that Avro does not allow:
/// dot-separated parts, each a letter or `_` then letters, digits or `_`.
fn invalid_name(schema: &serde_json::Value) -> Option<String> {
    match schema {
        serde_json::Value::Array(items) => items.iter().find_map(invalid_name),
        serde_json::Value::Object(object) => {
            let named =
                matches!(object.get("type").and_then(|t| t.as_str()), Some("record" | "error" | "enum" | "fixed"));
            if named && let Some(name) = object.get("name").and_then(|n| n.as_str()) {
                let part_ok = |part: &str| {
                    let mut chars = part.chars();
                    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                };
                if !name.split('.').all(part_ok) {
                    return Some(name.to_owned());
                }
            }
            object.values().find_map(invalid_name)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
