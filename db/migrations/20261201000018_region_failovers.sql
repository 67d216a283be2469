-- Operators' failovers of consumer groups between regions (`orderflow region failover`), dry runs included.
CREATE TABLE region_failovers (
    id          uuid        PRIMARY KEY,
    run_by      text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    mode        text        NOT NULL CHECK (mode IN ('dry_run', 'apply')),
    group_id    text        NOT NULL,
    from_region text        NOT NULL,
    to_region   text        NOT NULL,
    -- [{"topic": "east.orders.events", "partition": 0, "upstream": 12, "before": 3 or null, "after": 9}, ...]
    offsets     jsonb,
    outcome     text        NOT NULL CHECK (outcome IN ('done', 'refused', 'failed')),
    error       text
);
CREATE INDEX region_failovers_at ON region_failovers (at DESC);
