-- The outbox is a queue: a row lives for milliseconds, so its dead rows pile up at the head of the primary
-- key, which every relay read walks from its lowest entry. Autovacuum's default waits for a fifth of the
-- table to be dead, and pauses as it goes; here it comes after 10,000 dead rows, whatever the table's size,
-- without pauses. A relay whose role owns the table also vacuums it itself after a drain (`vacuum_after`).
ALTER TABLE outbox SET (
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_cost_delay = 0
);
