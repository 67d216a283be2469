-- Least privilege: one login role per part of the pipeline, each allowed its own tables, the shared outbox and
-- inbox, and the event store when the part is event-sourced; nothing else, and no schema changes. The
-- user that runs the migrations (DATABASE_URL) stays the owner of every table; `orderflow serve` and
-- `orderflow demo` migrate with it, then connect each part as its role.
--
--   role                     tables
--   orderflow_orders         order_submissions, orders_view; events; outbox (write); inbox
--   orderflow_payments       payments, provider_ledger; events; outbox (write); inbox
--   orderflow_inventory      stock_buckets, stock_orders, stock_reservations; outbox (write); inbox
--   orderflow_delivery       deliveries; events; outbox (write); inbox
--   orderflow_orchestrator   sagas, saga_events, saga_timers; outbox (write); inbox
--   orderflow_relay          outbox (read, update, delete), outbox_quarantine (read, insert)
--   orderflow_registry       registry_schemas, registry_subject_versions, registry_global_config,
--                            registry_subject_config
--
-- Operator and finance commands (`orderflow outbox`, `status`, `reconcile`, ...) keep the migrating user.
--
-- Roles belong to the whole server, grants to one database: the roles are created only when missing (another
-- database on the server, such as a parallel test's, may have created them, even at the same moment), the
-- grants are made here for this database. No password is set here: the local server trusts 127.0.0.1; an
-- operator gives each role one with ALTER ROLE ... PASSWORD and hands it to the part (see README.md).

DO $$
DECLARE
    part_role text;
BEGIN
    FOREACH part_role IN ARRAY ARRAY['orderflow_orders', 'orderflow_payments', 'orderflow_inventory',
                                     'orderflow_delivery', 'orderflow_orchestrator', 'orderflow_relay',
                                     'orderflow_registry']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = part_role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN', part_role);
            EXCEPTION
                -- Created meanwhile by a migration of another database on this server.
                WHEN duplicate_object OR unique_violation THEN NULL;
            END;
        END IF;
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), part_role);
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', part_role);
    END LOOP;
END
$$;

-- Nobody but the owner and the grants below (PostgreSQL grants nothing on tables to PUBLIC by default; this
-- states it for these tables whatever was done to them before).
REVOKE ALL ON events, outbox, outbox_quarantine, inbox,
              registry_schemas, registry_subject_versions, registry_global_config, registry_subject_config,
              order_submissions, orders_view, provider_ledger, payments,
              stock_buckets, stock_orders, stock_reservations, deliveries,
              sagas, saga_events, saga_timers
    FROM PUBLIC;

-- Shared by every part that consumes: dedup on insert, pruned past the horizon. Writing to the outbox returns
-- the new ids (SELECT on id only: a writer does not read the others' records).
GRANT SELECT, INSERT, DELETE ON inbox
    TO orderflow_orders, orderflow_payments, orderflow_inventory, orderflow_delivery, orderflow_orchestrator;
GRANT INSERT, SELECT (id) ON outbox
    TO orderflow_orders, orderflow_payments, orderflow_inventory, orderflow_delivery, orderflow_orchestrator;

-- The event-sourced services load and append their streams.
GRANT SELECT, INSERT ON events TO orderflow_orders, orderflow_payments, orderflow_delivery;

GRANT SELECT, INSERT ON order_submissions TO orderflow_orders;
GRANT SELECT, INSERT, UPDATE ON orders_view TO orderflow_orders;

GRANT SELECT, INSERT, UPDATE ON payments TO orderflow_payments;
GRANT SELECT, INSERT ON provider_ledger TO orderflow_payments;
GRANT USAGE ON SEQUENCE provider_ledger_id_seq TO orderflow_payments;

-- set_stock replaces a SKU's buckets.
GRANT SELECT, INSERT, UPDATE, DELETE ON stock_buckets TO orderflow_inventory;
GRANT SELECT, INSERT, UPDATE ON stock_orders, stock_reservations TO orderflow_inventory;

GRANT SELECT, INSERT, UPDATE ON deliveries TO orderflow_delivery;

GRANT SELECT, INSERT, UPDATE ON sagas TO orderflow_orchestrator;
GRANT SELECT, INSERT ON saga_events TO orderflow_orchestrator;
GRANT SELECT, INSERT, UPDATE, DELETE ON saga_timers TO orderflow_orchestrator;

GRANT SELECT, UPDATE, DELETE ON outbox TO orderflow_relay;
GRANT SELECT, INSERT ON outbox_quarantine TO orderflow_relay;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON registry_schemas, registry_subject_versions, registry_global_config, registry_subject_config
    TO orderflow_registry;
