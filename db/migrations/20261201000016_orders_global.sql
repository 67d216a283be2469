-- The global view of orders (crate `services`, `orders::global`): every region's orders as this region's
-- database sees them, from its own orders.events and the other regions' replicated copies.
CREATE TABLE orders_global (
    order_id      uuid        PRIMARY KEY,
    -- The region the order was placed in, and whose services act on it.
    home_region   text        NOT NULL,
    customer_id   uuid        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('placed', 'completed', 'cancelled')),
    cancel_reason text,
    total_minor   bigint      NOT NULL,
    currency      text        NOT NULL,
    -- When this region applied the placement and the end.
    seen_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at      timestamptz
);
CREATE INDEX orders_global_home ON orders_global (home_region, status);

-- The orders role runs the view (part orders-global).
GRANT SELECT, INSERT, UPDATE ON orders_global TO orderflow_orders;
