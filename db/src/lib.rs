//! Postgres connection settings and the schema migrations of every orderflow component.
//!
//! Every table of the pipeline (event store, outbox, inbox, saga store, service tables) is created by the
//! migrations in `db/migrations`, applied in order by [`MIGRATOR`]. Migrations only ever move forward; a
//! released migration is never edited (sqlx refuses to start when a checksum changes).
//!
//! What it promises: [`connect`] gives a pool whose connections have been checked once, or an error that names
//! the server it tried. What it does not: it never creates the database itself; tests get theirs from
//! `testkit`, deployments from their operators.
//!
//! Least privilege: the migrations also create a login role per part ([`Role`]) with grants on that part's
//! tables only; [`RoleConfig`] derives each part's URL from the migrating user's, and [`connect_as`]
//! connects a part as its role. The migrating user needs CREATEROLE (or the roles made beforehand by an
//! operator) and owns the tables.
//!
//! ```no_run
//! # async fn run() -> Result<(), db::DbError> {
//! let settings = db::DbConfig::from_url("postgres://postgres@127.0.0.1:5432/postgres");
//! let pool = db::connect(&settings).await?;
//! db::migrate(&pool).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

mod roles;

pub use roles::{Role, RoleConfig};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _};

/// The migrations of every component, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Where the database is and how many connections to keep.
#[derive(Clone)]
pub struct DbConfig {
    /// A `postgres://` URL. It may hold a password, so it is never logged whole.
    pub url: String,
    /// Upper bound on open connections.
    pub max_connections: u32,
    /// How long a caller waits for a free connection before it gets an error.
    pub acquire_timeout: Duration,
}

impl DbConfig {
    /// Settings with the defaults: 10 connections, 10 s acquire timeout.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }

    /// The URL without its password, fit for logs and error messages.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// What can go wrong while connecting or migrating.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The server did not answer or refused the connection.
    #[error("cannot connect to Postgres at {url}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// An administrative statement (create or drop a database) failed.
    #[error("cannot {action}")]
    Admin {
        action: String,
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed to apply, or an applied one was changed since.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database lacks some of this build's migrations; a command that must not change the schema
    /// refuses to run on it.
    #[error(
        "the database has {applied} of the {known} orderflow migrations this build knows; run `orderflow migrate` first"
    )]
    NotMigrated { applied: usize, known: usize },
    /// A query failed.
    #[error("cannot query the database")]
    Query(#[source] sqlx::Error),
    /// A part's URL cannot be derived from this one (see [`RoleConfig`]); give the part its own.
    #[error("cannot derive a part's database URL from {url}: {reason}")]
    Url { url: String, reason: String },
}

/// Opens a pool and checks one connection, so a wrong URL fails here and not at the first query.
pub async fn connect(settings: &DbConfig) -> Result<PgPool, DbError> {
    let connect_error = |source| DbError::Connect {
        url: settings.redacted_url(),
        source,
    };
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect(&settings.url)
        .await
        .map_err(connect_error)?;
    tracing::debug!(url = %settings.redacted_url(), "connected to Postgres");
    Ok(pool)
}

/// Opens a pool as `role` (see [`RoleConfig`]), checked like [`connect`]'s.
///
/// # Errors
/// [`DbError::Url`] when the role's URL cannot be derived, [`DbError::Connect`] as [`connect`]; a role the
/// migrations have not created yet fails to connect.
pub async fn connect_as(roles: &RoleConfig, role: Role) -> Result<PgPool, DbError> {
    let settings = roles.settings(role)?;
    let pool = connect(&settings).await?;
    tracing::info!(%role, url = %settings.redacted_url(), "connected as the part's role");
    Ok(pool)
}

/// Applies every migration that has not been applied yet.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Checks that every migration of this build has been applied, without applying any: for commands that only
/// read and must not change the schema.
///
/// # Errors
/// [`DbError::NotMigrated`] when some are missing, [`DbError::Query`] when the check itself fails.
pub async fn require_migrated(pool: &PgPool) -> Result<(), DbError> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .or_else(|e| match &e {
                // No migration has ever run here: the table does not exist.
                sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
                    Ok(Vec::new())
                }
                _ => Err(DbError::Query(e)),
            })?;
    let known: Vec<i64> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect();
    let present = known.iter().filter(|v| applied.contains(v)).count();
    if present < known.len() {
        return Err(DbError::NotMigrated {
            applied: present,
            known: known.len(),
        });
    }
    Ok(())
}

/// Database `name` on the server of `server`, created when it does not exist yet; returns its URL. `name` must
/// be lowercase ASCII letters, digits and `_`.
pub async fn ensure_database(server: &str, name: &str) -> Result<String, DbError> {
    let (options, mut admin) = admin_connection(server).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(checked_identifier(name))
            .fetch_one(&mut admin)
            .await
            .map_err(|source| DbError::Admin {
                action: format!("look up database {name}"),
                source,
            })?;
    admin.close().await.ok();
    if exists {
        Ok(options.database(name).to_url_lossy().to_string())
    } else {
        create_database(server, name).await
    }
}

/// Creates database `name` on the server of `server` (a URL whose database is only used to connect) and
/// returns the URL of the new database. `name` must be lowercase ASCII letters, digits and `_`.
pub async fn create_database(server: &str, name: &str) -> Result<String, DbError> {
    let (options, mut admin) = admin_connection(server).await?;
    // Safe to splice: `checked_identifier` lets only `[a-z0-9_]` through.
    sqlx::query(AssertSqlSafe(format!(
        r#"CREATE DATABASE "{}""#,
        checked_identifier(name)
    )))
    .execute(&mut admin)
    .await
    .map_err(|source| DbError::Admin {
        action: format!("create database {name}"),
        source,
    })?;
    admin.close().await.ok();
    Ok(options.database(name).to_url_lossy().to_string())
}

/// Drops database `name` on the server of `server`, ending its open connections.
pub async fn drop_database(server: &str, name: &str) -> Result<(), DbError> {
    let (_, mut admin) = admin_connection(server).await?;
    // Safe to splice: `checked_identifier` lets only `[a-z0-9_]` through.
    sqlx::query(AssertSqlSafe(format!(
        r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
        checked_identifier(name)
    )))
    .execute(&mut admin)
    .await
    .map_err(|source| DbError::Admin {
        action: format!("drop database {name}"),
        source,
    })?;
    admin.close().await.ok();
    Ok(())
}

async fn admin_connection(server: &str) -> Result<(PgConnectOptions, PgConnection), DbError> {
    let connect_error = |source| DbError::Connect {
        url: redact(server),
        source,
    };
    let options: PgConnectOptions = server.parse().map_err(connect_error)?;
    let conn = options.connect().await.map_err(connect_error)?;
    Ok((options, conn))
}

/// Identifiers cannot be bound as query parameters, so the names this crate formats into DDL are checked.
fn checked_identifier(name: &str) -> &str {
    assert!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {name:?} must be lowercase letters, digits and _"
    );
    name
}

/// Replaces the password of a URL with `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the path or the query; its last '@' ends the user info, since a password may
    // hold an '@' of its own.
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***".to_owned(),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/orders"),
            "postgres://app:***@db:5432/orders"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn redact_hides_a_password_with_an_at_sign_or_in_the_query() {
        assert_eq!(
            redact("postgres://app:p@ss@db:5432/orders"),
            "postgres://app:***@db:5432/orders"
        );
        assert_eq!(
            redact("postgres://app@db/orders?sslmode=require&password=s3cret"),
            "postgres://app@db/orders?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgres://db/orders?password=s3cret&user=app"),
            "postgres://db/orders?password=***&user=app"
        );
        assert_eq!(
            redact("postgres://app:x@db/orders?password=y"),
            "postgres://app:***@db/orders?password=***"
        );
    }
}
