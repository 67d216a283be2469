//! Avro schemas and the Confluent wire format.
//!
//! This crate owns the `.avsc` schema of every event and command of the four services, the codec that
//! encodes records in the Confluent wire format (magic byte, schema id, Avro body) through
//! `schema_registry_converter` with `TopicRecordNameStrategy`, and the Postgres-backed, Confluent-compatible
//! registry served by `orderflow registry`.

pub mod registry;
