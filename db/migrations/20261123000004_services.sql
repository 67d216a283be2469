-- Tables of the four services (crate `services`). Each service owns its tables; no service reads another's.

-- orders: one row per client idempotency key, so a double submit makes one order.
CREATE TABLE order_submissions (
    idempotency_key text        PRIMARY KEY,
    order_id        uuid        NOT NULL,
    submitted_at    timestamptz NOT NULL DEFAULT now()
);

-- orders: the read model, updated in the transaction that appends the order's events.
CREATE TABLE orders_view (
    order_id      uuid        PRIMARY KEY,
    customer_id   uuid        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('placed', 'completed', 'cancelled')),
    cancel_reason text,
    total_minor   bigint      NOT NULL,
    currency      text        NOT NULL,
    placed_at     timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz
);
CREATE INDEX orders_view_status ON orders_view (status);

-- payments: what the simulated payment provider did, committed on its own (as an external provider would),
-- so reconciliation can compare it with `payments`. Unique per (order, operation, provider_ref): a retried
-- call with the same idempotency key never charges twice.
CREATE TABLE provider_ledger (
    id           bigserial   PRIMARY KEY,
    order_id     uuid        NOT NULL,
    operation    text        NOT NULL CHECK (operation IN ('authorize', 'capture', 'void', 'refund')),
    amount_minor bigint      NOT NULL CHECK (amount_minor >= 0),
    currency     text        NOT NULL,
    provider_ref text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, operation, provider_ref)
);

-- payments: projection of each order's payment stream (aggregate `payment`, stream id = order id).
CREATE TABLE payments (
    order_id       uuid        PRIMARY KEY,
    payment_id     uuid        NOT NULL UNIQUE,
    amount_minor   bigint      NOT NULL,
    currency       text        NOT NULL,
    status         text        NOT NULL
                   CHECK (status IN ('authorized', 'declined', 'captured', 'voided', 'refunded')),
    provider_ref   text,
    captured_minor bigint      NOT NULL DEFAULT 0,
    refunded_minor bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (refunded_minor >= 0 AND refunded_minor <= captured_minor)
);

-- inventory: stock of a SKU split over buckets (rows) to spread lock contention on hot SKUs.
-- The CHECK is the last line of defence against oversell.
CREATE TABLE stock_buckets (
    sku      text   NOT NULL,
    bucket   int    NOT NULL CHECK (bucket >= 0),
    on_hand  bigint NOT NULL,
    reserved bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (sku, bucket),
    CHECK (reserved >= 0 AND reserved <= on_hand)
);

-- inventory: the answer given to each order's ReserveStock, so a repeat gets the same answer.
CREATE TABLE stock_orders (
    order_id     uuid        PRIMARY KEY,
    status       text        NOT NULL CHECK (status IN ('reserved', 'rejected', 'released', 'committed')),
    rejected_sku text,
    requested    bigint,
    available    bigint,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- inventory: what each order holds, per bucket.
CREATE TABLE stock_reservations (
    order_id uuid   NOT NULL,
    sku      text   NOT NULL,
    bucket   int    NOT NULL,
    quantity bigint NOT NULL CHECK (quantity > 0),
    status   text   NOT NULL CHECK (status IN ('reserved', 'released', 'committed')),
    PRIMARY KEY (order_id, sku, bucket)
);
CREATE INDEX stock_reservations_sku ON stock_reservations (sku) WHERE status = 'reserved';

-- delivery: one row per order's delivery; also the carrier simulation's work queue (claimed with
-- FOR UPDATE SKIP LOCKED when due).
CREATE TABLE deliveries (
    order_id      uuid        PRIMARY KEY,
    delivery_id   uuid        NOT NULL UNIQUE,
    status        text        NOT NULL
                  CHECK (status IN ('scheduled', 'dispatched', 'delivered', 'failed', 'cancelled')),
    due_at        timestamptz,
    dispatched_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status IN ('scheduled', 'dispatched');
