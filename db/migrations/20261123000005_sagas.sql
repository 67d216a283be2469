-- Saga store: one row per order saga (its current version, state name and outcome), the saga's event
-- stream, and its one durable timer.
--
-- Optimistic concurrency: the primary key of saga_events. Two writers that loaded the same version both try
-- to insert version + 1; the second gets a unique violation (SQLSTATE 23505), mapped to SagaError::Conflict,
-- and retries the whole handling (reload, decide again).
CREATE TABLE sagas (
    order_id      uuid        PRIMARY KEY,
    version       bigint      NOT NULL CHECK (version > 0),
    state         text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at      timestamptz,
    outcome       text CHECK (outcome IN ('completed', 'compensated', 'needs_attention')),
    cancel_reason text,
    CHECK ((ended_at IS NULL) = (outcome IS NULL))
);
-- Operators and the demo look for open sagas and count outcomes.
CREATE INDEX sagas_open ON sagas (started_at) WHERE ended_at IS NULL;
CREATE INDEX sagas_outcome ON sagas (outcome) WHERE outcome IS NOT NULL;

CREATE TABLE saga_events (
    order_id    uuid        NOT NULL,
    version     bigint      NOT NULL CHECK (version > 0),
    event_type  text        NOT NULL,
    event       jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, version)
);

-- At most one live timer per saga (a transition that sets a timer replaces the row). The poller claims due
-- rows with FOR UPDATE SKIP LOCKED, so several pollers never fire one timer at the same time.
CREATE TABLE saga_timers (
    order_id uuid        PRIMARY KEY,
    step     text        NOT NULL,
    attempt  integer     NOT NULL CHECK (attempt > 0),
    kind     text        NOT NULL CHECK (kind IN ('deadline', 'retry')),
    due_at   timestamptz NOT NULL
);
CREATE INDEX saga_timers_due ON saga_timers (due_at);
