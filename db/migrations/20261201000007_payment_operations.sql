-- payments: every operation the provider did for an order, with the provider's reference, written in the
-- transaction that records it. Reconciliation matches it to the provider's ledger one to one by reference.
-- A callback that contradicted the provider's answer is noted beside the operation.
CREATE TABLE payment_operations (
    provider_ref      text        PRIMARY KEY,
    order_id          uuid        NOT NULL,
    operation         text        NOT NULL CHECK (operation IN ('authorize', 'capture', 'void', 'refund')),
    amount_minor      bigint      NOT NULL CHECK (amount_minor >= 0),
    currency          text        NOT NULL,
    callback_conflict text,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX payment_operations_by_order ON payment_operations (order_id);

REVOKE ALL ON payment_operations FROM PUBLIC;
GRANT SELECT, INSERT ON payment_operations TO orderflow_payments;
