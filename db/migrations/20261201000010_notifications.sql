-- Max-effort notifications (docs/adr/0006-notifications.md): a subscriber is a URL and the secret its
-- requests are signed with; a notification is a row written in the sender's own transaction, POSTed until
-- the subscriber answers 2xx, on a schedule, then given up and left for reconciliation.
CREATE TABLE notify_subscribers (
    name       text        PRIMARY KEY,
    url        text        NOT NULL,
    secret     text        NOT NULL,
    -- The kinds it receives when notifications are sent to every subscriber of a kind (webhooks).
    kinds      text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications (
    id              uuid        PRIMARY KEY,
    subscriber      text        NOT NULL REFERENCES notify_subscribers (name),
    kind            text        NOT NULL,
    body            jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'delivered', 'given_up')),
    attempts        integer     NOT NULL DEFAULT 0,
    -- When a worker may try it next; a worker that claims it moves this past its request's timeout, so a
    -- worker that dies mid-request leaves it to another one after that.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_by_status ON notifications (status, created_at);

-- The orders part writes order-status webhooks in the transaction that ends an order; it sees who
-- subscribes to which kind, never their secrets.
GRANT SELECT (name, kinds) ON notify_subscribers TO orderflow_orders;
GRANT INSERT ON notifications TO orderflow_orders;

-- The notification worker: reads whom to send to (secrets included, to sign), and settles attempts.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orderflow_notifier') THEN
        BEGIN
            CREATE ROLE orderflow_notifier LOGIN;
        EXCEPTION
            -- Created meanwhile by a migration of another database on this server.
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO orderflow_notifier', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO orderflow_notifier;
GRANT SELECT ON notify_subscribers TO orderflow_notifier;
GRANT SELECT, UPDATE ON notifications TO orderflow_notifier;
