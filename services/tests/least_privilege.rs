//! Least privilege: every part connects as a role of its own, created by the migrations, that reaches its
//! own tables, the shared outbox and inbox (and the event store when the part is event-sourced), and
//! nothing else. Each statement runs in a transaction that is rolled back, so the checks do not depend on
//! one another; a refused one must fail with SQLSTATE 42501 (insufficient privilege), not any error.

use db::{DbConfig, Role, RoleConfig};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// SQLSTATE insufficient_privilege.
const REFUSED: &str = "42501";

/// A connection to the test database as `role`, on the URL the binary derives for its part from the
/// migrating user's (the local server trusts it without a password).
async fn connect_as(db: &testkit::TestDb, role: Role) -> PgConnection {
    let settings = RoleConfig::new(DbConfig::from_url(db.url()))
        .settings(role)
        .expect("a role's URL derives from the test database's");
    let options: PgConnectOptions = settings.url.parse().expect("the role's URL parses");
    PgConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database as {role}: {e}"))
}

/// Runs `statement` in a transaction that is rolled back.
async fn attempt(conn: &mut PgConnection, statement: &'static str) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    let outcome = sqlx::raw_sql(statement).execute(&mut *tx).await.map(drop);
    tx.rollback().await?;
    outcome
}

async fn assert_allowed(conn: &mut PgConnection, role: Role, statement: &'static str) {
    if let Err(e) = attempt(conn, statement).await {
        panic!("{role} must be allowed to run {statement:?}, got: {e}");
    }
}

async fn assert_refused(conn: &mut PgConnection, role: Role, statement: &'static str) {
    match attempt(conn, statement).await {
        Ok(()) => panic!("{role} must be refused {statement:?}, and it ran"),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(REFUSED) => {}
        Err(e) => panic!("{role} must be refused {statement:?} for lack of privilege, got: {e}"),
    }
}

// What every part that consumes commands or events does: dedup through the inbox, prune it, and write its
// outgoing records to the outbox (which returns their ids).
const INBOX_AND_OUTBOX: &[&str] = &[
    "INSERT INTO inbox (consumer_group, event_id, topic) VALUES ('g', gen_random_uuid(), 't')
     ON CONFLICT DO NOTHING",
    "DELETE FROM inbox WHERE consumer_group = 'g' AND processed_at < now()",
    "INSERT INTO outbox (topic, key, payload) VALUES ('t', 'k', '\\x00') RETURNING id",
];

// What an event-sourced part does with the event store: load a stream, append to it.
const EVENT_STORE: &[&str] = &[
    "SELECT version, payload FROM events WHERE aggregate_type = 'a' AND aggregate_id = 'b'",
    "INSERT INTO events (aggregate_type, aggregate_id, version, event_id, event_type, event_version,
                         payload, correlation_id)
     VALUES ('a', 'b', 1, gen_random_uuid(), 'T', 1, '{}', gen_random_uuid())",
];

// Reading what only the relay reads, or only an operator changes.
const RELAY_ONLY: &[&str] = &[
    "SELECT payload FROM outbox",
    "DELETE FROM outbox WHERE id = 1",
    "SELECT reason FROM outbox_quarantine",
];

const READ_STOCK: &str = "SELECT on_hand FROM stock_buckets";
const UPDATE_STOCK: &str = "UPDATE stock_buckets SET reserved = reserved + 1 WHERE sku = 'S'";
const READ_ORDERS: &str = "SELECT status FROM orders_view";
const READ_PAYMENTS: &str = "SELECT status FROM payments";
const READ_LEDGER: &str = "SELECT provider_ref FROM provider_ledger";
const READ_DELIVERIES: &str = "SELECT status FROM deliveries";
const READ_SAGAS: &str = "SELECT state FROM sagas";
const READ_SCHEMAS: &str = "SELECT schema FROM registry_schemas";
const READ_EVENTS: &str = "SELECT payload FROM events";

#[tokio::test]
async fn the_payments_role_cannot_update_stock() {
    let db = testkit::TestDb::new().await;
    let mut payments = connect_as(&db, Role::Payments).await;
    assert_refused(&mut payments, Role::Payments, UPDATE_STOCK).await;
    assert_refused(&mut payments, Role::Payments, READ_STOCK).await;
}

#[tokio::test]
async fn the_registry_role_cannot_read_orders() {
    let db = testkit::TestDb::new().await;
    let mut registry = connect_as(&db, Role::Registry).await;
    assert_refused(&mut registry, Role::Registry, READ_ORDERS).await;
    assert_refused(
        &mut registry,
        Role::Registry,
        "SELECT order_id FROM order_submissions",
    )
    .await;
}

/// The orders part writes order-status webhooks and sees who subscribes, never a secret; the notifier reads
/// secrets to sign and settles attempts, and nothing of the orders.
#[tokio::test]
async fn webhook_secrets_are_for_the_notifier_alone() {
    let db = testkit::TestDb::new().await;
    let mut orders = connect_as(&db, Role::Orders).await;
    let write_webhook = "INSERT INTO notifications (id, subscriber, kind, body)
         SELECT gen_random_uuid(), name, 'order.completed', '{}' FROM notify_subscribers
         WHERE 'order.completed' = ANY (kinds)";
    assert_allowed(&mut orders, Role::Orders, write_webhook).await;
    assert_refused(
        &mut orders,
        Role::Orders,
        "SELECT secret FROM notify_subscribers",
    )
    .await;
    assert_refused(
        &mut orders,
        Role::Orders,
        "UPDATE notifications SET status = 'delivered'",
    )
    .await;

    let mut notifier = connect_as(&db, Role::Notifier).await;
    for allowed in [
        "SELECT n.id, s.url, s.secret FROM notifications n JOIN notify_subscribers s ON s.name = n.subscriber",
        "UPDATE notifications SET status = 'delivered' WHERE status = 'pending'",
    ] {
        assert_allowed(&mut notifier, Role::Notifier, allowed).await;
    }
    assert_refused(&mut notifier, Role::Notifier, READ_ORDERS).await;
    assert_refused(&mut notifier, Role::Notifier, "DELETE FROM notifications").await;
}

/// One part's role: what its part runs, and a sample of what belongs to others.
struct Part {
    role: Role,
    /// Consumes through the inbox and writes to the outbox.
    consumer: bool,
    /// Loads and appends event streams.
    event_sourced: bool,
    allowed: &'static [&'static str],
    refused: &'static [&'static str],
}

const PARTS: &[Part] = &[
    Part {
        role: Role::Orders,
        consumer: true,
        event_sourced: true,
        allowed: &[
            "INSERT INTO order_submissions (idempotency_key, order_id) VALUES ('k', gen_random_uuid())
             ON CONFLICT DO NOTHING",
            "SELECT order_id FROM order_submissions WHERE idempotency_key = 'k'",
            "INSERT INTO orders_view (order_id, customer_id, status, total_minor, currency)
             VALUES (gen_random_uuid(), gen_random_uuid(), 'placed', 100, 'EUR')",
            "UPDATE orders_view SET status = 'cancelled', ended_at = now() WHERE status = 'placed'",
            "SELECT status, count(*) FROM orders_view GROUP BY status",
            // GET /orders/{id} shows the saga's state and step, and the API's admission count leaves out
            // orders whose saga ended; reading is all the orders part may do.
            READ_SAGAS,
            "SELECT event FROM saga_events",
            "SELECT count(*) FROM orders_view o WHERE o.status = 'placed'
               AND NOT EXISTS (SELECT 1 FROM sagas s WHERE s.order_id = o.order_id AND s.ended_at IS NOT NULL)",
        ],
        refused: &[
            READ_STOCK,
            READ_PAYMENTS,
            READ_DELIVERIES,
            "UPDATE sagas SET ended_at = now() WHERE ended_at IS NULL",
            "INSERT INTO saga_events (order_id, version, event_type, event)
             VALUES (gen_random_uuid(), 1, 'x', '{}')",
            READ_SCHEMAS,
        ],
    },
    Part {
        role: Role::Payments,
        consumer: true,
        event_sourced: true,
        allowed: &[
            "INSERT INTO payment_operations (provider_ref, order_id, operation, amount_minor, currency)
             VALUES ('ref', gen_random_uuid(), 'authorize', 100, 'EUR') ON CONFLICT DO NOTHING",
            "SELECT EXISTS (SELECT 1 FROM payment_operations WHERE provider_ref = 'ref')",
            "INSERT INTO payments (order_id, payment_id, amount_minor, currency, status)
             VALUES (gen_random_uuid(), gen_random_uuid(), 100, 'EUR', 'authorized')
             ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, updated_at = now()",
            "UPDATE payments SET captured_minor = amount_minor WHERE status = 'authorized'",
            READ_PAYMENTS,
        ],
        refused: &[
            UPDATE_STOCK,
            READ_STOCK,
            READ_ORDERS,
            READ_DELIVERIES,
            READ_SAGAS,
            READ_SCHEMAS,
            // The provider's books are the provider's.
            READ_LEDGER,
            "SELECT reference FROM provider_requests",
        ],
    },
    Part {
        role: Role::Inventory,
        consumer: true,
        event_sourced: false,
        allowed: &[
            "INSERT INTO stock_buckets (sku, bucket, on_hand) VALUES ('S', 0, 5)
             ON CONFLICT (sku, bucket) DO UPDATE SET on_hand = excluded.on_hand",
            UPDATE_STOCK,
            "DELETE FROM stock_buckets WHERE sku = 'S'",
            "SELECT sku, bucket, on_hand FROM stock_buckets WHERE sku = 'S' FOR UPDATE SKIP LOCKED",
            "INSERT INTO stock_orders (order_id, status) VALUES (gen_random_uuid(), 'reserved')",
            "UPDATE stock_orders SET status = 'released' WHERE status = 'reserved'",
            "INSERT INTO stock_reservations (order_id, sku, bucket, quantity, status)
             VALUES (gen_random_uuid(), 'S', 0, 1, 'reserved')",
            "UPDATE stock_reservations SET status = 'released' WHERE status = 'reserved'",
        ],
        refused: &[
            READ_EVENTS,
            READ_ORDERS,
            READ_PAYMENTS,
            READ_DELIVERIES,
            READ_SAGAS,
            READ_SCHEMAS,
        ],
    },
    Part {
        role: Role::Delivery,
        consumer: true,
        event_sourced: true,
        allowed: &[
            "INSERT INTO deliveries (order_id, delivery_id, status, due_at)
             VALUES (gen_random_uuid(), gen_random_uuid(), 'scheduled', now())",
            "SELECT order_id FROM deliveries WHERE due_at <= now() FOR UPDATE SKIP LOCKED",
            "UPDATE deliveries SET status = 'dispatched', dispatched_at = now() WHERE status = 'scheduled'",
        ],
        refused: &[
            READ_STOCK,
            READ_ORDERS,
            READ_PAYMENTS,
            READ_SAGAS,
            READ_SCHEMAS,
        ],
    },
    Part {
        role: Role::Orchestrator,
        consumer: true,
        event_sourced: false,
        allowed: &[
            "INSERT INTO sagas (order_id, version, state) VALUES (gen_random_uuid(), 1, 'started')
             ON CONFLICT (order_id) DO UPDATE SET version = excluded.version, updated_at = now()",
            "UPDATE sagas SET ended_at = now(), outcome = 'completed' WHERE ended_at IS NULL",
            "SELECT outcome, count(*) FROM sagas GROUP BY outcome",
            "INSERT INTO saga_events (order_id, version, event_type, event)
             VALUES (gen_random_uuid(), 1, 'Started', '{}')",
            "SELECT event FROM saga_events ORDER BY version",
            "INSERT INTO saga_timers (order_id, step, attempt, kind, due_at)
             VALUES (gen_random_uuid(), 'payment', 1, 'deadline', now())
             ON CONFLICT (order_id) DO UPDATE SET due_at = excluded.due_at",
            "SELECT order_id FROM saga_timers WHERE due_at <= now() FOR UPDATE SKIP LOCKED",
            "UPDATE saga_timers SET attempt = attempt + 1 WHERE due_at <= now()",
            "DELETE FROM saga_timers WHERE due_at <= now()",
        ],
        refused: &[
            READ_EVENTS,
            READ_STOCK,
            READ_ORDERS,
            READ_PAYMENTS,
            READ_DELIVERIES,
            READ_SCHEMAS,
        ],
    },
    Part {
        role: Role::Relay,
        consumer: false,
        event_sourced: false,
        allowed: &[
            "SELECT o.id, o.topic, o.key, o.payload, o.headers, o.attempts FROM outbox o
             WHERE NOT EXISTS (SELECT 1 FROM outbox_quarantine q WHERE q.topic = o.topic AND q.key = o.key)
             ORDER BY o.id LIMIT 10",
            "UPDATE outbox SET attempts = attempts + 1, last_error = 'e' WHERE id = 1",
            "DELETE FROM outbox WHERE id = ANY('{1,2}')",
            "WITH moved AS (DELETE FROM outbox WHERE id = 1 RETURNING *)
             INSERT INTO outbox_quarantine (id, topic, key, payload, headers, created_at, attempts, reason)
             SELECT id, topic, key, payload, headers, created_at, 1, 'r' FROM moved",
            "SELECT pg_try_advisory_lock(42)",
        ],
        refused: &[
            "INSERT INTO outbox (topic, key, payload) VALUES ('t', 'k', '\\x00')",
            "SELECT event_id FROM inbox",
            READ_EVENTS,
            READ_STOCK,
            READ_ORDERS,
            READ_PAYMENTS,
            READ_SAGAS,
            READ_SCHEMAS,
        ],
    },
    Part {
        role: Role::Registry,
        consumer: false,
        event_sourced: false,
        allowed: &[
            // An identity column: inserting must not need more than the table's INSERT.
            "INSERT INTO registry_schemas (schema, canonical, fingerprint) VALUES ('s', 's', '\\x01')
             ON CONFLICT (fingerprint) DO UPDATE SET schema = registry_schemas.schema",
            READ_SCHEMAS,
            "INSERT INTO registry_subject_versions (subject, version, schema_id)
             SELECT 'subject', 1, id FROM registry_schemas",
            "UPDATE registry_subject_versions SET deleted = true WHERE subject = 'subject'",
            "DELETE FROM registry_subject_versions WHERE subject = 'subject'",
            "INSERT INTO registry_global_config (compatibility) VALUES ('BACKWARD')
             ON CONFLICT (singleton) DO UPDATE SET compatibility = excluded.compatibility",
            "SELECT compatibility FROM registry_global_config",
            "INSERT INTO registry_subject_config (subject, compatibility) VALUES ('subject', 'NONE')
             ON CONFLICT (subject) DO UPDATE SET compatibility = excluded.compatibility",
            "DELETE FROM registry_subject_config WHERE subject = 'subject'",
        ],
        refused: &[
            READ_ORDERS,
            "SELECT order_id FROM order_submissions",
            "INSERT INTO outbox (topic, key, payload) VALUES ('t', 'k', '\\x00')",
            "SELECT event_id FROM inbox",
            READ_EVENTS,
            READ_STOCK,
            READ_PAYMENTS,
            READ_SAGAS,
        ],
    },
    Part {
        role: Role::Provider,
        consumer: false,
        event_sourced: false,
        allowed: &[
            // The ledger has a bigserial id: its sequence must be usable.
            "INSERT INTO provider_ledger (order_id, operation, amount_minor, currency, provider_ref)
             VALUES (gen_random_uuid(), 'authorize', 100, 'EUR', 'ref')",
            READ_LEDGER,
            "INSERT INTO provider_requests (operation, idempotency_key, order_id, amount_minor, currency,
                                            reference, outcome)
             VALUES ('authorize', 'k', gen_random_uuid(), 100, 'EUR', 'ref', 'approved')",
            "SELECT reference FROM provider_requests WHERE operation = 'authorize' AND idempotency_key = 'k'",
            // It registers where its results go, writes them, and sends them.
            "INSERT INTO notify_subscribers (name, url, secret) VALUES ('payments', 'http://x', 's')
             ON CONFLICT (name) DO UPDATE SET url = excluded.url, secret = excluded.secret",
            "INSERT INTO notifications (id, subscriber, kind, body)
             SELECT gen_random_uuid(), name, 'payment.result', '{}' FROM notify_subscribers",
            "UPDATE notifications SET status = 'delivered' WHERE status = 'pending'",
        ],
        refused: &[
            READ_PAYMENTS,
            "SELECT provider_ref FROM payment_operations",
            READ_ORDERS,
            "INSERT INTO outbox (topic, key, payload) VALUES ('t', 'k', '\\x00')",
            "SELECT event_id FROM inbox",
            READ_SAGAS,
            "DELETE FROM provider_ledger",
        ],
    },
];

#[tokio::test]
async fn each_role_can_do_what_its_part_needs_and_no_more() {
    let db = testkit::TestDb::new().await;
    for part in PARTS {
        let mut conn = connect_as(&db, part.role).await;
        let shared = part.consumer.then_some(INBOX_AND_OUTBOX).into_iter();
        let events = part.event_sourced.then_some(EVENT_STORE).into_iter();
        for statement in shared.chain(events).flatten().chain(part.allowed) {
            assert_allowed(&mut conn, part.role, statement).await;
        }
        if !part.event_sourced {
            for statement in EVENT_STORE {
                assert_refused(&mut conn, part.role, statement).await;
            }
        }
        if part.role != Role::Relay {
            for statement in RELAY_ONLY {
                assert_refused(&mut conn, part.role, statement).await;
            }
        }
        for statement in part.refused {
            assert_refused(&mut conn, part.role, statement).await;
        }
        // No part changes the schema.
        assert_refused(&mut conn, part.role, "CREATE TABLE intruder (id int)").await;
        assert_refused(&mut conn, part.role, "DROP TABLE outbox").await;
        conn.close().await.ok();
    }
}
