-- The orders HTTP API: an order keeps where it is delivered, and the orders part reads its saga's state
-- and step (GET /orders/{id}) without writing to the orchestrator's tables.
ALTER TABLE orders_view ADD COLUMN delivery_address jsonb;

GRANT SELECT ON sagas, saga_events TO orderflow_orders;
