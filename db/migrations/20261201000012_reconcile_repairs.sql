-- What `orderflow reconcile --apply` did about each difference, keyed by the difference (its class and
-- what it is about), so that a repair is done once however often --apply runs, killed halfway or not: the
-- row and the repair commit together.
CREATE TABLE reconcile_repairs (
    difference_key text        PRIMARY KEY,
    run_id         uuid        NOT NULL REFERENCES reconcile_runs (id),
    class          text        NOT NULL,
    order_id       uuid,
    provider_ref   text,
    amount_minor   bigint      NOT NULL,
    currency       text        NOT NULL,
    action         text        NOT NULL CHECK (action IN ('resent_notification', 'needs_attention')),
    reason         text,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
