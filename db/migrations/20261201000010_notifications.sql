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
