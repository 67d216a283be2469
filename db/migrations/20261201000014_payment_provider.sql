-- The simulated payment provider becomes a separate party (docs/adr/0008-payment-provider.md): it decides
-- requests behind its own HTTP API, keeps its own books, and sends each result to the payments service through
-- the notifier. It connects as a role of its own; the payments service no longer writes its ledger.

-- Every request the provider decided, by (operation, idempotency key): a repeat of the key gets the same
-- result and moves no money twice. The ledger (`provider_ledger`) keeps the approved ones: money movements.
CREATE TABLE provider_requests (
    operation       text        NOT NULL CHECK (operation IN ('authorize', 'capture', 'void', 'refund')),
    idempotency_key text        NOT NULL,
    order_id        uuid        NOT NULL,
    amount_minor    bigint      NOT NULL CHECK (amount_minor >= 0),
    currency        text        NOT NULL,
    reference       text        NOT NULL UNIQUE,
    outcome         text        NOT NULL CHECK (outcome IN ('approved', 'declined')),
    reason          text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (operation, idempotency_key)
);
CREATE INDEX provider_requests_by_order ON provider_requests (order_id);

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orderflow_provider') THEN
        BEGIN
            CREATE ROLE orderflow_provider LOGIN;
        EXCEPTION
            -- Created meanwhile by a migration of another database on this server.
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO orderflow_provider', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO orderflow_provider;
GRANT SELECT, INSERT ON provider_requests, provider_ledger TO orderflow_provider;
GRANT USAGE ON SEQUENCE provider_ledger_id_seq TO orderflow_provider;
-- It registers where its results go, writes them in its own transactions, and sends them with a notifier
-- worker of its own.
GRANT SELECT, INSERT, UPDATE ON notify_subscribers TO orderflow_provider;
GRANT SELECT, INSERT, UPDATE ON notifications TO orderflow_provider;

-- The provider's books are the provider's: the payments service learns of them only through results.
REVOKE ALL ON provider_ledger FROM orderflow_payments;
REVOKE USAGE ON SEQUENCE provider_ledger_id_seq FROM orderflow_payments;

-- Reconciliation's money repairs go through the provider and the payments service's recorder.
ALTER TABLE reconcile_repairs DROP CONSTRAINT reconcile_repairs_action_check;
ALTER TABLE reconcile_repairs ADD CONSTRAINT reconcile_repairs_action_check
    CHECK (action IN ('recorded_capture', 'refunded', 'voided', 'resent_notification', 'needs_attention'));
