//! End-to-end and fault tests of orderflow, against the real broker and database.
//!
//! The tests live in `tests/tests/`; this library is empty. They take Postgres and Kafka from `testkit`
//! (`DATABASE_URL`, `KAFKA_BOOTSTRAP`, or the local environment of `./dev up`).
