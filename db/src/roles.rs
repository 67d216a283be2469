//! Least privilege: every part of the pipeline connects as a login role of its own, which the migrations
//! create (`20261201000006_roles.sql`) and allow only that part's tables, the shared outbox and inbox, and
//! the event store when the part is event-sourced. The URL of `DATABASE_URL` names the user that migrates
//! and owns the tables; a part's URL is, by default, the same one with the part's role as the user and no
//! password, or one given for the part (`ORDERFLOW_<PART>_DATABASE_URL` in the binary) when its role has
//! a password or lives elsewhere.
//!
//! ```
//! let admin = db::DbConfig::from_url("postgres://admin:secret@db:5432/orderflow?sslmode=require");
//! let roles = db::RoleConfig::new(admin)
//!     .with_url(db::Role::Payments, "postgres://orderflow_payments:p4y@db:5432/orderflow");
//! assert_eq!(
//!     roles.settings(db::Role::Orders).unwrap().url,
//!     "postgres://orderflow_orders@db:5432/orderflow?sslmode=require"
//! );
//! assert_eq!(
//!     roles.settings(db::Role::Payments).unwrap().redacted_url(),
//!     "postgres://orderflow_payments:***@db:5432/orderflow"
//! );
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::{DbConfig, DbError, redact};

/// A part of the pipeline with a database role of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Orders,
    Payments,
    Inventory,
    Delivery,
    /// The order saga orchestrator and its timers.
    Orchestrator,
    /// The outbox relay.
    Relay,
    /// The schema registry (`orderflow registry`, or the demo's own).
    Registry,
    /// The worker that sends notifications (`orderflow notify run`, or the demo's own).
    Notifier,
    /// The simulated payment provider (`orderflow serve provider`, or the demo's own).
    Provider,
}

impl Role {
    /// Every role the migrations create.
    pub const ALL: [Self; 9] = [
        Self::Orders,
        Self::Payments,
        Self::Inventory,
        Self::Delivery,
        Self::Orchestrator,
        Self::Relay,
        Self::Registry,
        Self::Notifier,
        Self::Provider,
    ];

    /// The role's name in Postgres.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Orders => "orderflow_orders",
            Self::Payments => "orderflow_payments",
            Self::Inventory => "orderflow_inventory",
            Self::Delivery => "orderflow_delivery",
            Self::Orchestrator => "orderflow_orchestrator",
            Self::Relay => "orderflow_relay",
            Self::Registry => "orderflow_registry",
            Self::Notifier => "orderflow_notifier",
            Self::Provider => "orderflow_provider",
        }
    }

    /// The environment variable (and config file setting) of the binary that gives the part's own URL.
    #[must_use]
    pub const fn url_variable(self) -> &'static str {
        match self {
            Self::Orders => "ORDERFLOW_ORDERS_DATABASE_URL",
            Self::Payments => "ORDERFLOW_PAYMENTS_DATABASE_URL",
            Self::Inventory => "ORDERFLOW_INVENTORY_DATABASE_URL",
            Self::Delivery => "ORDERFLOW_DELIVERY_DATABASE_URL",
            Self::Orchestrator => "ORDERFLOW_ORCHESTRATOR_DATABASE_URL",
            Self::Relay => "ORDERFLOW_RELAY_DATABASE_URL",
            Self::Registry => "ORDERFLOW_REGISTRY_DATABASE_URL",
            Self::Notifier => "ORDERFLOW_NOTIFIER_DATABASE_URL",
            Self::Provider => "ORDERFLOW_PROVIDER_DATABASE_URL",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where each part connects: the migrating user's settings, and the URLs given for some parts. Every part's
/// pool has the limits of the migrating user's settings.
#[derive(Clone)]
pub struct RoleConfig {
    admin: DbConfig,
    urls: BTreeMap<Role, String>,
}

impl RoleConfig {
    /// Every part on `admin`'s server and database as its own role, without a password (a server that
    /// trusts local connections, or a `~/.pgpass` with the roles' passwords), with `admin`'s pool limits.
    #[must_use]
    pub fn new(admin: DbConfig) -> Self {
        Self {
            admin,
            urls: BTreeMap::new(),
        }
    }

    /// `role` connects to `url` instead, e.g. one with its password. The URL is taken as given: its user
    /// is whoever it names.
    #[must_use]
    pub fn with_url(mut self, role: Role, url: impl Into<String>) -> Self {
        self.urls.insert(role, url.into());
        self
    }

    /// Every part's pool opens at most `max_connections`, and a caller waits at most `acquire_timeout` for
    /// one of them.
    #[must_use]
    pub const fn with_limits(mut self, max_connections: u32, acquire_timeout: Duration) -> Self {
        self.admin.max_connections = max_connections;
        self.admin.acquire_timeout = acquire_timeout;
        self
    }

    /// The migrating user's settings.
    #[must_use]
    pub const fn admin(&self) -> &DbConfig {
        &self.admin
    }

    /// The settings of `role`'s connections.
    ///
    /// # Errors
    /// [`DbError::Url`] when the URL of the migrating user is not one a role can be put into.
    pub fn settings(&self, role: Role) -> Result<DbConfig, DbError> {
        let url = match self.urls.get(&role) {
            Some(url) => url.clone(),
            None => role_url(&self.admin.url, role)?,
        };
        Ok(DbConfig {
            url,
            ..self.admin.clone()
        })
    }
}

impl fmt::Debug for RoleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: BTreeMap<Role, String> = self
            .urls
            .iter()
            .map(|(role, url)| (*role, redact(url)))
            .collect();
        f.debug_struct("RoleConfig")
            .field("admin", &self.admin)
            .field("urls", &urls)
            .finish()
    }
}

/// `admin_url` with `role` as its user and without a password, in the authority or the query; host, port,
/// database and other parameters stay.
fn role_url(admin_url: &str, role: Role) -> Result<String, DbError> {
    let invalid = |reason: String| DbError::Url {
        url: redact(admin_url),
        reason,
    };
    let mut url = url::Url::parse(admin_url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(invalid("expected a postgres:// URL".to_owned()));
    }
    let query: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "user" && name != "password")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    // A URL without a host (a Unix socket given with ?host=) has no user info to set: the user goes into
    // the query instead.
    let has_host = url.host_str().is_some_and(|host| !host.is_empty());
    let in_authority =
        has_host && url.set_password(None).is_ok() && url.set_username(role.name()).is_ok();
    url.set_query(None);
    if !query.is_empty() || !in_authority {
        let mut pairs = url.query_pairs_mut();
        pairs.extend_pairs(&query);
        if !in_authority {
            pairs.append_pair("user", role.name());
        }
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::{Role, RoleConfig, role_url};
    use crate::DbConfig;

    #[test]
    fn the_role_replaces_the_user_and_the_password_is_dropped() {
        assert_eq!(
            role_url(
                "postgres://postgres@127.0.0.1:5432/postgres",
                Role::Payments
            )
            .unwrap(),
            "postgres://orderflow_payments@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            role_url(
                "postgresql://admin:s3cret@db/orders?sslmode=require",
                Role::Relay
            )
            .unwrap(),
            "postgresql://orderflow_relay@db/orders?sslmode=require"
        );
        assert_eq!(
            role_url("postgres://db:6432/orders", Role::Registry).unwrap(),
            "postgres://orderflow_registry@db:6432/orders"
        );
    }

    #[test]
    fn a_user_or_password_in_the_query_is_replaced_too() {
        assert_eq!(
            role_url(
                "postgres://db/orders?user=admin&password=s3cret&application_name=x",
                Role::Orders
            )
            .unwrap(),
            "postgres://orderflow_orders@db/orders?application_name=x"
        );
    }

    #[test]
    fn a_socket_url_gets_the_role_in_its_query() {
        let url = role_url(
            "postgres:///orders?host=/var/run/postgresql",
            Role::Inventory,
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres:///orders?host=%2Fvar%2Frun%2Fpostgresql&user=orderflow_inventory"
        );
        let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        assert_eq!(options.get_username(), "orderflow_inventory");
        assert_eq!(options.get_database(), Some("orders"));
    }

    #[test]
    fn what_is_not_a_postgres_url_is_an_error_without_the_password() {
        let error = role_url("mysql://root:s3cret@db/x", Role::Orders).unwrap_err();
        assert!(!format!("{error:?}").contains("s3cret"), "{error:?}");
        assert!(role_url("not a url", Role::Orders).is_err());
    }

    #[test]
    fn a_given_url_wins_and_debug_hides_its_password() {
        let roles = RoleConfig::new(DbConfig::from_url("postgres://postgres@db/orders"))
            .with_url(Role::Delivery, "postgres://courier:hunter2@other/orders");
        assert_eq!(
            roles.settings(Role::Delivery).unwrap().url,
            "postgres://courier:hunter2@other/orders"
        );
        assert_eq!(
            roles.settings(Role::Orchestrator).unwrap().url,
            "postgres://orderflow_orchestrator@db/orders"
        );
        assert!(!format!("{roles:?}").contains("hunter2"), "{roles:?}");
    }

    #[test]
    fn every_role_has_its_own_name_and_variable() {
        let mut names: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
        let mut variables: Vec<&str> = Role::ALL.iter().map(|r| r.url_variable()).collect();
        names.sort_unstable();
        names.dedup();
        variables.sort_unstable();
        variables.dedup();
        assert_eq!(names.len(), Role::ALL.len());
        assert_eq!(variables.len(), Role::ALL.len());
    }
}
