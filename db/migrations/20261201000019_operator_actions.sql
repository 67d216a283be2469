-- The audit trail of operators' actions that have no table of their own (replays, group resets, failovers
-- and reconciliation runs have theirs): redriving dead letters from the CLI or the console, and the
-- console's other actions. Refused and failed actions are recorded too.
CREATE TABLE operator_actions (
    id      uuid        PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- 'cli' or 'console'.
    via     text        NOT NULL CHECK (via IN ('cli', 'console')),
    -- Who: the CLI's $USER, or the console's client address.
    actor   text        NOT NULL,
    -- e.g. 'dlq.redrive'.
    action  text        NOT NULL,
    -- What it acted on, e.g. a dead-letter topic.
    target  text        NOT NULL,
    detail  jsonb       NOT NULL DEFAULT '{}',
    outcome text        NOT NULL CHECK (outcome IN ('done', 'refused', 'failed')),
    error   text
);
CREATE INDEX operator_actions_at ON operator_actions (at DESC);
