//! The registry's tables (see `db/migrations/20261123000003_schema_registry.sql`) and every statement on
//! them.
//!
//! Writes to a subject (register, delete) run in a transaction that first takes a transaction-scoped
//! advisory lock on the subject's name, so concurrent writers to one subject take turns and each sees the
//! versions the one before it committed. Schemas shared across subjects are deduplicated by the unique
//! fingerprint of their normalized form (the parsed schema as JSON) (`ON CONFLICT DO NOTHING`), so two subjects registering the same
//! schema at once still get one id.

use apache_avro::Schema;
use sqlx::{PgPool, Postgres, Transaction};

use super::compatibility::{self, Earlier, Level};
use super::error::RegistryError;

/// One version of a subject, with its schema.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    pub schema_type: String,
    pub schema: String,
    pub canonical: String,
    pub deleted: bool,
}

/// A schema ready to be stored: the text as given and its normalized form (the parsed schema written back as JSON, defaults and docs kept).
pub struct NewSchema {
    pub text: String,
    pub canonical: String,
    pub parsed: Schema,
}

/// Every version of `subject`, soft-deleted ones too, oldest first.
pub async fn versions<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    subject: &str,
) -> Result<Vec<SubjectVersion>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.subject, v.version, v.schema_id AS id, s.schema_type, s.schema, s.canonical, v.deleted
         FROM registry_subject_versions v JOIN registry_schemas s ON s.id = v.schema_id
         WHERE v.subject = $1
         ORDER BY v.version",
    )
    .bind(subject)
    .fetch_all(executor)
    .await
}

/// Subject names, sorted; only those with a live version unless `include_deleted`.
pub async fn subjects(pool: &PgPool, include_deleted: bool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT subject FROM registry_subject_versions
         WHERE $1 OR NOT deleted
         ORDER BY subject",
    )
    .bind(include_deleted)
    .fetch_all(pool)
    .await
}

/// The schema with this id, as `(schema_type, text)`, if a version of some subject (live or soft-deleted)
/// still points at it.
pub async fn schema_by_id(pool: &PgPool, id: i32) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.schema_type, s.schema FROM registry_schemas s
         WHERE s.id = $1
           AND EXISTS (SELECT 1 FROM registry_subject_versions v WHERE v.schema_id = s.id)",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The `(subject, version)` pairs that use schema `id`; soft-deleted ones only with `include_deleted`.
pub async fn versions_of_id(
    pool: &PgPool,
    id: i32,
    include_deleted: bool,
) -> Result<Vec<(String, i32)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT subject, version FROM registry_subject_versions
         WHERE schema_id = $1 AND ($2 OR NOT deleted)
         ORDER BY subject, version",
    )
    .bind(id)
    .bind(include_deleted)
    .fetch_all(pool)
    .await
}

/// Registers `schema` under `subject` and returns its id.
///
/// A schema already live under the subject (same canonical form) gives its id and adds no version.
/// Otherwise the schema is checked against the subject's level and added as the next version, reusing the
/// global id of the same schema under any other subject.
pub async fn register(
    pool: &PgPool,
    subject: &str,
    schema: &NewSchema,
) -> Result<i32, RegistryError> {
    let mut tx = pool.begin().await?;
    lock_subject(&mut tx, subject).await?;
    let all = versions(&mut *tx, subject).await?;
    if let Some(existing) = all
        .iter()
        .rev()
        .find(|v| !v.deleted && v.canonical == schema.canonical)
    {
        return Ok(existing.id);
    }
    let level = effective_level(&mut tx, subject).await?;
    let live: Vec<SubjectVersion> = all.iter().filter(|v| !v.deleted).cloned().collect();
    let messages = check_off_thread(level, schema.parsed.clone(), live).await?;
    if !messages.is_empty() {
        return Err(RegistryError::Incompatible {
            subject: subject.to_owned(),
            messages,
        });
    }
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO registry_schemas (schema_type, schema, canonical, fingerprint)
         VALUES ('AVRO', $1, $2, sha256(convert_to($2, 'UTF8')))
         ON CONFLICT (fingerprint) DO NOTHING
         RETURNING id",
    )
    .bind(&schema.text)
    .bind(&schema.canonical)
    .fetch_optional(&mut *tx)
    .await?;
    let id = match inserted {
        Some(id) => id,
        None => sqlx::query_scalar(
            "SELECT id FROM registry_schemas WHERE fingerprint = sha256(convert_to($1, 'UTF8'))",
        )
        .bind(&schema.canonical)
        .fetch_one(&mut *tx)
        .await?,
    };
    let next = all.last().map_or(1, |v| v.version + 1);
    sqlx::query(
        "INSERT INTO registry_subject_versions (subject, version, schema_id) VALUES ($1, $2, $3)",
    )
    .bind(subject)
    .bind(next)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(subject, version = next, id, "schema registered");
    Ok(id)
}

/// Runs CPU work of a request (Avro parsing, compatibility checks: they grow with the schema and the number
/// of versions) on the blocking pool, so that it never stalls the async threads serving other requests.
///
/// # Panics
/// Resumes a panic of `work`.
pub async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels blocking work: the request is over anyway.
        Err(_) => Err(RegistryError::Busy(0)),
    }
}

/// [`check_against`] on the blocking pool (see [`off_thread`]).
pub async fn check_off_thread(
    level: Level,
    new: Schema,
    against: Vec<SubjectVersion>,
) -> Result<Vec<String>, RegistryError> {
    off_thread(move || check_against(level, &new, &against.iter().collect::<Vec<_>>())).await
}

/// Checks `new` against the live versions `live` (oldest first) under `level`; see
/// [`compatibility::check`].
pub fn check_against(
    level: Level,
    new: &Schema,
    live: &[&SubjectVersion],
) -> Result<Vec<String>, RegistryError> {
    if level == Level::None {
        return Ok(Vec::new());
    }
    let parsed = live
        .iter()
        .map(|v| {
            Schema::parse_str(&v.schema).map_err(|e| {
                RegistryError::InvalidSchema(format!(
                    "stored schema of version {} does not parse: {e}",
                    v.version
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let earlier: Vec<Earlier<'_>> = live
        .iter()
        .zip(&parsed)
        .map(|(v, schema)| Earlier {
            version: v.version,
            schema,
        })
        .collect();
    Ok(compatibility::check(level, new, &earlier))
}

/// Soft-deletes every live version of `subject` and returns their numbers.
pub async fn soft_delete_subject(pool: &PgPool, subject: &str) -> Result<Vec<i32>, RegistryError> {
    let mut tx = pool.begin().await?;
    lock_subject(&mut tx, subject).await?;
    let all = versions(&mut *tx, subject).await?;
    if all.is_empty() {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    }
    let deleted: Vec<i32> = sqlx::query_scalar(
        "UPDATE registry_subject_versions SET deleted = true
         WHERE subject = $1 AND NOT deleted
         RETURNING version",
    )
    .bind(subject)
    .fetch_all(&mut *tx)
    .await?;
    if deleted.is_empty() {
        return Err(RegistryError::SubjectSoftDeleted(subject.to_owned()));
    }
    tx.commit().await?;
    let mut deleted = deleted;
    deleted.sort_unstable();
    Ok(deleted)
}

/// Removes every version of `subject`, which must all be soft-deleted, and its subject-level config.
pub async fn hard_delete_subject(pool: &PgPool, subject: &str) -> Result<Vec<i32>, RegistryError> {
    let mut tx = pool.begin().await?;
    lock_subject(&mut tx, subject).await?;
    let all = versions(&mut *tx, subject).await?;
    if all.is_empty() {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    }
    if all.iter().any(|v| !v.deleted) {
        return Err(RegistryError::SubjectNotSoftDeleted(subject.to_owned()));
    }
    sqlx::query("DELETE FROM registry_subject_versions WHERE subject = $1")
        .bind(subject)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM registry_subject_config WHERE subject = $1")
        .bind(subject)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(all.iter().map(|v| v.version).collect())
}

/// Which version a delete names: a number or the latest live one.
#[derive(Clone, Copy, Debug)]
pub enum VersionRef {
    Number(i32),
    Latest,
}

/// Soft-deletes (or, with `permanent`, removes a soft-deleted) version of `subject`; returns its number.
pub async fn delete_version(
    pool: &PgPool,
    subject: &str,
    version: VersionRef,
    permanent: bool,
) -> Result<i32, RegistryError> {
    let mut tx = pool.begin().await?;
    lock_subject(&mut tx, subject).await?;
    let all = versions(&mut *tx, subject).await?;
    if all.is_empty() || (!permanent && all.iter().all(|v| v.deleted)) {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    }
    let found = match version {
        VersionRef::Number(n) => all.iter().find(|v| v.version == n),
        VersionRef::Latest if permanent => all.last(),
        VersionRef::Latest => all.iter().rev().find(|v| !v.deleted),
    };
    let Some(found) = found else {
        return Err(RegistryError::VersionNotFound {
            subject: subject.to_owned(),
            version: match version {
                VersionRef::Number(n) => n.to_string(),
                VersionRef::Latest => "latest".to_owned(),
            },
        });
    };
    let number = found.version;
    if permanent {
        if !found.deleted {
            return Err(RegistryError::VersionNotSoftDeleted {
                subject: subject.to_owned(),
                version: number,
            });
        }
        sqlx::query("DELETE FROM registry_subject_versions WHERE subject = $1 AND version = $2")
            .bind(subject)
            .bind(number)
            .execute(&mut *tx)
            .await?;
    } else {
        if found.deleted {
            return Err(RegistryError::VersionSoftDeleted {
                subject: subject.to_owned(),
                version: number,
            });
        }
        sqlx::query(
            "UPDATE registry_subject_versions SET deleted = true WHERE subject = $1 AND version = $2",
        )
        .bind(subject)
        .bind(number)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(number)
}

/// The global level, or the default when none was set.
pub async fn global_level(pool: &PgPool) -> Result<Level, RegistryError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT compatibility FROM registry_global_config")
            .fetch_optional(pool)
            .await?;
    stored.map_or(Ok(Level::DEFAULT), |name| name.parse())
}

/// Sets the global level.
pub async fn set_global_level(pool: &PgPool, level: Level) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_global_config (singleton, compatibility) VALUES (true, $1)
         ON CONFLICT (singleton) DO UPDATE SET compatibility = EXCLUDED.compatibility",
    )
    .bind(level.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// The level set on `subject` itself, if any.
pub async fn subject_level(pool: &PgPool, subject: &str) -> Result<Option<Level>, RegistryError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT compatibility FROM registry_subject_config WHERE subject = $1")
            .bind(subject)
            .fetch_optional(pool)
            .await?;
    stored.map(|name| name.parse()).transpose()
}

/// Sets the level of `subject`.
pub async fn set_subject_level(
    pool: &PgPool,
    subject: &str,
    level: Level,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_subject_config (subject, compatibility) VALUES ($1, $2)
         ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility",
    )
    .bind(subject)
    .bind(level.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes the level of `subject` and returns it, if there was one.
pub async fn delete_subject_level(
    pool: &PgPool,
    subject: &str,
) -> Result<Option<Level>, RegistryError> {
    let stored: Option<String> = sqlx::query_scalar(
        "DELETE FROM registry_subject_config WHERE subject = $1 RETURNING compatibility",
    )
    .bind(subject)
    .fetch_optional(pool)
    .await?;
    stored.map(|name| name.parse()).transpose()
}

/// The level that applies to `subject`: its own, else the global one, else the default.
pub async fn level_for(pool: &PgPool, subject: &str) -> Result<Level, RegistryError> {
    match subject_level(pool, subject).await? {
        Some(level) => Ok(level),
        None => global_level(pool).await,
    }
}

async fn effective_level(
    tx: &mut Transaction<'_, Postgres>,
    subject: &str,
) -> Result<Level, RegistryError> {
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT coalesce(
             (SELECT compatibility FROM registry_subject_config WHERE subject = $1),
             (SELECT compatibility FROM registry_global_config))",
    )
    .bind(subject)
    .fetch_one(&mut **tx)
    .await?;
    stored.map_or(Ok(Level::DEFAULT), |name| name.parse())
}

/// Serializes writers to one subject until the transaction ends. The key is a 64-bit hash of the name; two
/// subjects that collide only share a lock, which costs some waiting and nothing else.
async fn lock_subject(
    tx: &mut Transaction<'_, Postgres>,
    subject: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('orderflow.registry:' || $1, 0))")
        .bind(subject)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
