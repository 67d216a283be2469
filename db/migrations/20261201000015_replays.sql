-- Operators' replays of a range of a Kafka topic (`orderflow replay`, crate `ops`, module `replay`).

-- One row per run of the command, dry runs included: who, when, with what arguments, and how it ended.
CREATE TABLE replays (
    id           uuid        PRIMARY KEY,
    run_by       text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    mode         text        NOT NULL CHECK (mode IN ('dry_run', 'apply')),
    source_topic text        NOT NULL,
    -- 'topic:<name>' or 'group:<name>' (with '+rebuild' when it rebuilds a projection).
    target       text        NOT NULL,
    -- The command's arguments as `ops::replay::ReplaySpec` in JSON: `replay resume` continues from them.
    arguments    jsonb       NOT NULL,
    -- Records read from the range, of them those the filters matched, of those written to the target.
    read         bigint      NOT NULL DEFAULT 0,
    matched      bigint      NOT NULL DEFAULT 0,
    written      bigint      NOT NULL DEFAULT 0,
    -- Per target partition, the offset from which a resume looks for this replay's records written after
    -- the last checkpoint ({"0": 1234, ...}); topic targets only.
    target_marks jsonb       NOT NULL DEFAULT '{}',
    -- For a rebuild: missing, differing and restored rows of the projection, and a few examples.
    differences  jsonb,
    outcome      text        NOT NULL DEFAULT 'running'
                             CHECK (outcome IN ('running', 'finished', 'stopped', 'failed')),
    error        text
);
CREATE INDEX replays_started ON replays (started_at DESC);

-- Per source partition: the range and the checkpoint. Every matching source record before `next_offset`
-- is on the target.
CREATE TABLE replay_partitions (
    replay_id    uuid   NOT NULL REFERENCES replays (id),
    partition    int    NOT NULL,
    start_offset bigint NOT NULL,
    end_offset   bigint NOT NULL CHECK (end_offset >= start_offset),
    next_offset  bigint NOT NULL,
    written      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (replay_id, partition),
    CHECK (next_offset BETWEEN start_offset AND end_offset)
);

-- `orders_view` as a rebuild computes it from `orders.events`, one set of rows per replay, compared with
-- the live view and then written into it. Only the columns the events carry.
CREATE TABLE orders_view_rebuilds (
    replay_id     uuid        NOT NULL REFERENCES replays (id),
    order_id      uuid        NOT NULL,
    customer_id   uuid        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('placed', 'completed', 'cancelled')),
    cancel_reason text,
    total_minor   bigint      NOT NULL,
    currency      text        NOT NULL,
    placed_at     timestamptz NOT NULL,
    ended_at      timestamptz,
    PRIMARY KEY (replay_id, order_id)
);

-- Operators' actions on consumer groups (`orderflow group reset`), dry runs included.
CREATE TABLE group_resets (
    id          uuid        PRIMARY KEY,
    run_by      text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    mode        text        NOT NULL CHECK (mode IN ('dry_run', 'apply')),
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    arguments   jsonb       NOT NULL,
    -- [{"partition": 0, "before": 12 or null, "after": 7}, ...]
    offsets     jsonb,
    outcome     text        NOT NULL CHECK (outcome IN ('done', 'refused', 'failed')),
    error       text
);
CREATE INDEX group_resets_at ON group_resets (at DESC);
