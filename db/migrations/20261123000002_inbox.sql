-- Inbox: one row per event a consumer group has applied, written in the same transaction as the effect.
-- A redelivered event finds its row and is acknowledged without a second effect. Rows are pruned after a
-- horizon that must exceed the longest replay window (see consumers::inbox::prune).
CREATE TABLE inbox (
    consumer_group text        NOT NULL,
    event_id       uuid        NOT NULL,
    topic          text        NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
