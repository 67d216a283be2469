-- What a submission asked for (a SHA-256 of its customer, lines and address), so that an idempotency key
-- used again for another order is refused instead of answered with the first one. Submissions from before
-- this column have none, and are answered as before.
ALTER TABLE order_submissions ADD COLUMN request_fingerprint text;
