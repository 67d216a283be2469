//! The REST routes, shaped as Confluent Schema Registry's: paths, query parameters, bodies, error codes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Semaphore;

use super::compatibility::Level;
use super::error::RegistryError;
use super::store::{self, NewSchema, SubjectVersion, VersionRef};
use super::{MAX_SUBJECT_BYTES, RegistryConfig};

/// The content type of every answer, as Confluent's.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Params = Query<HashMap<String, String>>;
type Answer = Result<Response, RegistryError>;

/// What every handler may see: the database, and the guards of [`RegistryConfig`].
#[derive(Clone)]
struct AppState {
    pool: PgPool,
    settings: Arc<RegistryConfig>,
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}

/// Taken by the handlers that change configuration: the admin token, when the registry has one.
struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = RegistryError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = &state.settings.admin_token else {
            return Ok(Admin);
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match presented {
            Some(presented) if same_secret(presented.as_bytes(), token.as_bytes()) => Ok(Admin),
            _ => Err(RegistryError::Unauthorized),
        }
    }
}

/// Taken by the handlers that delete subjects or versions: [`Admin`], and deletes not disabled.
struct Deletion;

impl FromRequestParts<AppState> for Deletion {
    type Rejection = RegistryError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Admin::from_request_parts(parts, state).await?;
        if state.settings.no_deletes {
            return Err(RegistryError::DeletesDisabled);
        }
        Ok(Deletion)
    }
}

/// Compares in a time that does not depend on where the first difference is (only on the length).
fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Bounds every request: at most `max_concurrent_requests` at once (one more is answered 503 at once), each
/// within `request_timeout` (503 past it). A request cut short is dropped where it waits, which rolls its
/// transaction back; work already handed to a blocking thread finishes there and its result is dropped.
async fn within_limits(
    State(limits): State<Arc<Limits>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_turn) = limits.in_flight.clone().try_acquire_owned() else {
        return RegistryError::Busy(limits.max).into_response();
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => RegistryError::TimedOut(limits.timeout).into_response(),
    }
}

struct Limits {
    in_flight: Arc<Semaphore>,
    max: usize,
    timeout: Duration,
}

/// The routes on a pool whose database is migrated.
pub fn routes(pool: PgPool, settings: &RegistryConfig) -> Router {
    let limits = Arc::new(Limits {
        in_flight: Arc::new(Semaphore::new(settings.max_concurrent_requests)),
        max: settings.max_concurrent_requests,
        timeout: settings.request_timeout,
    });
    let state = AppState {
        pool,
        settings: Arc::new(settings.clone()),
    };
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/schemas/types", get(|| async { ok(json!(["AVRO"])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_of_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_of_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(subject_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subject_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(subject_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config)
                .put(set_subject_config)
                .delete(delete_subject_config),
        )
        .route("/mode", get(|| async { ok(json!({"mode": "READWRITE"})) }))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_with_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_with_version),
        )
        .fallback(|| async { RegistryError::NotFound })
        .method_not_allowed_fallback(|| async { RegistryError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(limits, within_limits))
        .with_state(state)
}

/// A JSON answer with Confluent's content type.
pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

/// A query flag such as `deleted=true`; Confluent's Python client sends `True`.
fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

// ---------------------------------------------------------------- request bodies

/// The body of register, lookup and compatibility requests.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    references: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct ConfigRequest {
    compatibility: Option<String>,
}

/// Parses a JSON body. Not JSON at all, or a content type that is not JSON: 400. JSON of the wrong shape:
/// the endpoint's own error (`wrong_shape`).
fn parse_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
    wrong_shape: impl FnOnce(String) -> RegistryError,
) -> Result<T, RegistryError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or_default();
        if !content_type.to_ascii_lowercase().contains("json") {
            return Err(RegistryError::UnsupportedMediaType(content_type.to_owned()));
        }
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => wrong_shape(e.to_string()),
        serde_json::error::Category::Io
        | serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof => {
            RegistryError::BadRequest(format!("Request body is not valid JSON: {e}"))
        }
    })
}

/// Reads and checks the schema of a register, lookup or compatibility request.
fn parse_schema(headers: &HeaderMap, body: &Bytes) -> Result<NewSchema, RegistryError> {
    let request: SchemaRequest = parse_body(headers, body, |e| {
        RegistryError::InvalidSchema(format!("Invalid request body: {e}"))
    })?;
    let schema_type = request.schema_type.as_deref().unwrap_or("AVRO");
    if !schema_type.eq_ignore_ascii_case("AVRO") {
        return Err(RegistryError::InvalidSchema(format!(
            "Invalid schema type {}: this registry supports AVRO only",
            excerpt(schema_type, 40)
        )));
    }
    if request.references.is_some_and(|r| !r.is_empty()) {
        return Err(RegistryError::InvalidSchema(
            "Schema references are not supported by this registry".to_owned(),
        ));
    }
    let text = match request.schema {
        Some(text) if !text.trim().is_empty() => text,
        _ => return Err(RegistryError::InvalidSchema("Empty schema".to_owned())),
    };
    let parsed = Schema::parse_str(&text).map_err(|e| invalid_schema(&text, &e))?;
    // Identity keeps what the parsing canonical form drops (defaults, docs, aliases, logical types): a
    // schema that only changes a default is a new version, as on Confluent.
    let canonical = serde_json::to_string(&parsed).map_err(|e| invalid_schema(&text, &e))?;
    Ok(NewSchema {
        canonical,
        text,
        parsed,
    })
}

/// The 42201 of a schema that does not parse. The client sent the schema and has it: the answer starts it, to
/// say which one, and bounds the cause, which may quote it too.
fn invalid_schema(text: &str, cause: &dyn std::fmt::Display) -> RegistryError {
    RegistryError::InvalidSchema(format!(
        "Invalid schema {}: {}",
        excerpt(text, 200),
        excerpt(&cause.to_string(), 1_000)
    ))
}

fn parse_level(request: ConfigRequest) -> Result<Level, RegistryError> {
    match request.compatibility {
        Some(name) => name.parse(),
        None => Err(RegistryError::InvalidCompatibilityLevel(String::new())),
    }
}

/// A version in a path: a positive 32-bit integer, `latest`, or -1 for latest.
fn parse_version(text: &str) -> Result<VersionRef, RegistryError> {
    if text.eq_ignore_ascii_case("latest") {
        return Ok(VersionRef::Latest);
    }
    match text.parse::<i32>() {
        Ok(-1) => Ok(VersionRef::Latest),
        Ok(n) if n > 0 => Ok(VersionRef::Number(n)),
        _ => Err(RegistryError::InvalidVersion(text.to_owned())),
    }
}

/// A subject name as it came in the path (percent-decoded): no control character, at most
/// [`MAX_SUBJECT_BYTES`] bytes.
fn check_subject(subject: String) -> Result<String, RegistryError> {
    let reason = if subject.len() > MAX_SUBJECT_BYTES {
        format!(
            "it is {} bytes long, over the limit of {MAX_SUBJECT_BYTES}",
            subject.len()
        )
    } else if let Some((at, c)) = subject.char_indices().find(|(_, c)| c.is_control()) {
        format!(
            "it holds the control character U+{:04X} at byte {at}",
            u32::from(c)
        )
    } else {
        return Ok(subject);
    };
    Err(RegistryError::InvalidSubject {
        shown: format!("{:?}", excerpt(&subject, 40)),
        reason,
    })
}

/// `text`, or its first `max_chars` characters and how long it was.
pub(super) fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}... ({} bytes in all)", &text[..end], text.len()),
    }
}

fn parse_id(text: &str) -> Result<i32, RegistryError> {
    text.parse::<i32>()
        .map_err(|_| RegistryError::SchemaNotFound(format!("Schema {text} not found")))
}

// ---------------------------------------------------------------- schemas

async fn schema_by_id(State(pool): State<PgPool>, Path(id): Path<String>) -> Answer {
    let id = parse_id(&id)?;
    let Some((schema_type, schema)) = store::schema_by_id(&pool, id).await? else {
        return Err(RegistryError::SchemaNotFound(format!(
            "Schema {id} not found"
        )));
    };
    let mut body = json!({ "schema": schema });
    if schema_type != "AVRO" {
        body["schemaType"] = json!(schema_type);
    }
    Ok(ok(body))
}

/// The `(subject, version)` pairs that use schema `id`; 40403 when no schema has that id.
async fn versions_of_existing_id(
    pool: &PgPool,
    id: &str,
    params: &HashMap<String, String>,
) -> Result<Vec<(String, i32)>, RegistryError> {
    let id = parse_id(id)?;
    if store::schema_by_id(pool, id).await?.is_none() {
        return Err(RegistryError::SchemaNotFound(format!(
            "Schema {id} not found"
        )));
    }
    Ok(store::versions_of_id(pool, id, flag(params, "deleted")).await?)
}

async fn versions_of_id(
    State(pool): State<PgPool>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Answer {
    let pairs = versions_of_existing_id(&pool, &id, &params).await?;
    let body: Vec<Value> = pairs
        .into_iter()
        .map(|(subject, version)| json!({ "subject": subject, "version": version }))
        .collect();
    Ok(ok(json!(body)))
}

async fn subjects_of_id(
    State(pool): State<PgPool>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Answer {
    let mut subjects: Vec<String> = versions_of_existing_id(&pool, &id, &params)
        .await?
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    subjects.dedup();
    Ok(ok(json!(subjects)))
}

// ---------------------------------------------------------------- subjects

async fn subjects(State(pool): State<PgPool>, Query(params): Params) -> Answer {
    let subjects = store::subjects(&pool, flag(&params, "deleted")).await?;
    Ok(ok(json!(subjects)))
}

/// The versions of `subject` a request may see: live ones, and soft-deleted ones too with `deleted`.
/// A subject with none is not found.
async fn visible_versions(
    pool: &PgPool,
    subject: &str,
    include_deleted: bool,
) -> Result<Vec<SubjectVersion>, RegistryError> {
    let visible: Vec<SubjectVersion> = store::versions(pool, subject)
        .await?
        .into_iter()
        .filter(|v| include_deleted || !v.deleted)
        .collect();
    if visible.is_empty() {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    }
    Ok(visible)
}

fn find_version(
    subject: &str,
    visible: Vec<SubjectVersion>,
    version: VersionRef,
    text: &str,
) -> Result<SubjectVersion, RegistryError> {
    let found = match version {
        VersionRef::Latest => visible.into_iter().last(),
        VersionRef::Number(n) => visible.into_iter().find(|v| v.version == n),
    };
    found.ok_or_else(|| RegistryError::VersionNotFound {
        subject: subject.to_owned(),
        version: text.to_owned(),
    })
}

fn version_body(v: &SubjectVersion) -> Value {
    let mut body = json!({
        "subject": v.subject,
        "version": v.version,
        "id": v.id,
        "schema": v.schema,
    });
    if v.schema_type != "AVRO" {
        body["schemaType"] = json!(v.schema_type);
    }
    body
}

async fn subject_versions(
    State(pool): State<PgPool>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> Answer {
    let subject = check_subject(subject)?;
    let visible = visible_versions(&pool, &subject, flag(&params, "deleted")).await?;
    let numbers: Vec<i32> = visible.iter().map(|v| v.version).collect();
    Ok(ok(json!(numbers)))
}

async fn subject_version(
    State(pool): State<PgPool>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> Answer {
    let subject = check_subject(subject)?;
    let selected = parse_version(&version)?;
    let visible = visible_versions(&pool, &subject, flag(&params, "deleted")).await?;
    let found = find_version(&subject, visible, selected, &version)?;
    Ok(ok(version_body(&found)))
}

async fn subject_version_schema(
    State(pool): State<PgPool>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> Answer {
    let subject = check_subject(subject)?;
    let selected = parse_version(&version)?;
    let visible = visible_versions(&pool, &subject, flag(&params, "deleted")).await?;
    let found = find_version(&subject, visible, selected, &version)?;
    let mut response = found.schema.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

/// Schema references are not supported, so no version is referenced by another.
async fn referenced_by(
    State(pool): State<PgPool>,
    Path((subject, version)): Path<(String, String)>,
) -> Answer {
    let subject = check_subject(subject)?;
    let selected = parse_version(&version)?;
    let visible = visible_versions(&pool, &subject, false).await?;
    find_version(&subject, visible, selected, &version)?;
    Ok(ok(json!([])))
}

async fn register(
    State(pool): State<PgPool>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let subject = check_subject(subject)?;
    let schema = store::off_thread(move || parse_schema(&headers, &body)).await?;
    let id = store::register(&pool, &subject, &schema).await?;
    Ok(ok(json!({ "id": id })))
}

async fn lookup(
    State(pool): State<PgPool>,
    Path(subject): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let subject = check_subject(subject)?;
    let schema = store::off_thread(move || parse_schema(&headers, &body)).await?;
    let visible = visible_versions(&pool, &subject, flag(&params, "deleted")).await?;
    let found = visible
        .iter()
        .rev()
        .find(|v| v.canonical == schema.canonical)
        .ok_or_else(|| RegistryError::SchemaNotFound("Schema not found".to_owned()))?;
    Ok(ok(version_body(found)))
}

async fn delete_subject(
    _: Deletion,
    State(pool): State<PgPool>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> Answer {
    let subject = check_subject(subject)?;
    let deleted = if flag(&params, "permanent") {
        store::hard_delete_subject(&pool, &subject).await?
    } else {
        store::soft_delete_subject(&pool, &subject).await?
    };
    Ok(ok(json!(deleted)))
}

async fn delete_version(
    _: Deletion,
    State(pool): State<PgPool>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> Answer {
    let subject = check_subject(subject)?;
    let selected = parse_version(&version)?;
    let deleted =
        store::delete_version(&pool, &subject, selected, flag(&params, "permanent")).await?;
    Ok(ok(json!(deleted)))
}

// ---------------------------------------------------------------- config

fn config_request(headers: &HeaderMap, body: &Bytes) -> Result<Level, RegistryError> {
    let request: ConfigRequest = parse_body(headers, body, |_| {
        RegistryError::InvalidCompatibilityLevel(String::from_utf8_lossy(body).into_owned())
    })?;
    parse_level(request)
}

async fn global_config(State(pool): State<PgPool>) -> Answer {
    let level = store::global_level(&pool).await?;
    Ok(ok(json!({ "compatibilityLevel": level.as_str() })))
}

async fn set_global_config(
    _: Admin,
    State(pool): State<PgPool>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let level = config_request(&headers, &body)?;
    store::set_global_level(&pool, level).await?;
    Ok(ok(json!({ "compatibility": level.as_str() })))
}

async fn subject_config(
    State(pool): State<PgPool>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> Answer {
    let subject = check_subject(subject)?;
    let level = match store::subject_level(&pool, &subject).await? {
        Some(level) => level,
        None if flag(&params, "defaultToGlobal") => store::global_level(&pool).await?,
        None => return Err(RegistryError::SubjectConfigNotFound(subject)),
    };
    Ok(ok(json!({ "compatibilityLevel": level.as_str() })))
}

async fn set_subject_config(
    _: Admin,
    State(pool): State<PgPool>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let subject = check_subject(subject)?;
    let level = config_request(&headers, &body)?;
    store::set_subject_level(&pool, &subject, level).await?;
    Ok(ok(json!({ "compatibility": level.as_str() })))
}

async fn delete_subject_config(
    _: Admin,
    State(pool): State<PgPool>,
    Path(subject): Path<String>,
) -> Answer {
    let subject = check_subject(subject)?;
    match store::delete_subject_level(&pool, &subject).await? {
        Some(level) => Ok(ok(json!({ "compatibilityLevel": level.as_str() }))),
        None => Err(RegistryError::SubjectConfigNotFound(subject)),
    }
}

// ---------------------------------------------------------------- compatibility

fn compatibility_answer(messages: Vec<String>, params: &HashMap<String, String>) -> Response {
    let mut body = json!({ "is_compatible": messages.is_empty() });
    if flag(params, "verbose") {
        body["messages"] = json!(messages);
    }
    ok(body)
}

/// `POST /compatibility/subjects/{subject}/versions`: against the live versions the subject's level names
/// (the latest, or all for a transitive level). A subject without versions accepts anything.
async fn compatibility_with_all(
    State(pool): State<PgPool>,
    Path(subject): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let subject = check_subject(subject)?;
    let schema = store::off_thread(move || parse_schema(&headers, &body)).await?;
    let live: Vec<SubjectVersion> = store::versions(&pool, &subject)
        .await?
        .into_iter()
        .filter(|v| !v.deleted)
        .collect();
    let level = store::level_for(&pool, &subject).await?;
    let messages = store::check_off_thread(level, schema.parsed, live).await?;
    Ok(compatibility_answer(messages, &params))
}

/// `POST /compatibility/subjects/{subject}/versions/{version}`: `latest` is checked as the subject's level
/// says (the latest, or all live versions for a transitive level); a numbered version alone.
async fn compatibility_with_version(
    State(pool): State<PgPool>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let subject = check_subject(subject)?;
    let selected = parse_version(&version)?;
    let schema = store::off_thread(move || parse_schema(&headers, &body)).await?;
    let live = visible_versions(&pool, &subject, false).await?;
    let level = store::level_for(&pool, &subject).await?;
    let against: Vec<SubjectVersion> = match selected {
        VersionRef::Latest => live,
        VersionRef::Number(n) => {
            let found = live.into_iter().find(|v| v.version == n).ok_or_else(|| {
                RegistryError::VersionNotFound {
                    subject: subject.clone(),
                    version: version.clone(),
                }
            })?;
            vec![found]
        }
    };
    let messages = store::check_off_thread(level, schema.parsed, against).await?;
    Ok(compatibility_answer(messages, &params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_confluent_allows() {
        assert!(matches!(parse_version("latest"), Ok(VersionRef::Latest)));
        assert!(matches!(parse_version("-1"), Ok(VersionRef::Latest)));
        assert!(matches!(parse_version("7"), Ok(VersionRef::Number(7))));
        for bad in ["0", "-2", "one", "2147483648", ""] {
            assert!(
                matches!(parse_version(bad), Err(RegistryError::InvalidVersion(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn other_schema_types_are_refused_by_name() {
        let body =
            Bytes::from_static(br#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#);
        let err = parse_schema(&HeaderMap::new(), &body).err().unwrap();
        assert_eq!(err.error_code(), 42201);
        assert!(err.to_string().contains("PROTOBUF"), "{err}");
    }

    #[test]
    fn a_body_that_is_not_json_is_a_bad_request() {
        let err = parse_schema(&HeaderMap::new(), &Bytes::from_static(b"{schema"))
            .err()
            .unwrap();
        assert_eq!(err.error_code(), 400);
    }
}
