-- Every `orderflow reconcile` run, for finance's audit: who ran it, when, over which window, in which mode,
-- what it found per class and what it repaired (`orderflow reconcile history`).
CREATE TABLE reconcile_runs (
    id          uuid        PRIMARY KEY,
    run_by      text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    window_from timestamptz NOT NULL,
    window_to   timestamptz NOT NULL,
    mode        text        NOT NULL CHECK (mode IN ('dry_run', 'apply')),
    -- Per class: {"count": n, "amounts": {"EUR": minor units}}.
    found       jsonb,
    repaired    jsonb,
    outcome     text        CHECK (outcome IN ('clean', 'differences', 'failed'))
);
CREATE INDEX reconcile_runs_started ON reconcile_runs (started_at DESC);

-- Reconciliation reads each side's movements of a window and matches them by reference.
CREATE INDEX provider_ledger_created_at ON provider_ledger (created_at);
CREATE INDEX provider_ledger_provider_ref ON provider_ledger (provider_ref);
CREATE INDEX payment_operations_recorded_at ON payment_operations (recorded_at);
