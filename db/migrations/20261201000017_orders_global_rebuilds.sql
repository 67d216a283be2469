-- A rebuild of the global view (`orderflow replay <orders.events or a region's copy> --to-group orders-global
-- --rebuild`): the rows the replayed events make, kept apart from the live `orders_global` until they are
-- compared with it and restored (as `orders_view_rebuilds` is for `orders_view`).
CREATE TABLE orders_global_rebuilds (
    replay_id     uuid        NOT NULL REFERENCES replays (id),
    order_id      uuid        NOT NULL,
    home_region   text        NOT NULL,
    customer_id   uuid        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('placed', 'completed', 'cancelled')),
    cancel_reason text,
    total_minor   bigint      NOT NULL,
    currency      text        NOT NULL,
    seen_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at      timestamptz,
    PRIMARY KEY (replay_id, order_id)
);
