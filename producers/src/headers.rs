//! The headers every record carries, and conversions to and from Kafka headers.
//!
//! Values are UTF-8 strings. The outbox stores them as a JSON object next to the record, so the relay
//! publishes exactly what the writing transaction decided.

use std::collections::BTreeMap;

use rdkafka::message::{Header, OwnedHeaders};

/// The event's unique id (UUID v7); consumers deduplicate on it.
pub const EVENT_ID: &str = "event_id";
/// The event type name, e.g. `OrderPlaced`.
pub const EVENT_TYPE: &str = "event_type";
/// The event type's schema version in the domain model.
pub const EVENT_VERSION: &str = "event_version";
/// The registry's schema id, when the payload was encoded with a registered schema.
pub const SCHEMA_ID: &str = "schema_id";
/// The order the record belongs to; every record of one order's saga carries it.
pub const CORRELATION_ID: &str = "correlation_id";
/// The event id of the record that caused this one, when there is one.
pub const CAUSATION_ID: &str = "causation_id";
/// W3C trace context of the span that wrote the record.
pub const TRACEPARENT: &str = "traceparent";
/// The region where the record was first written; replication keeps it.
pub const ORIGIN_REGION: &str = "origin_region";

/// Header names and values of one record.
pub type RecordHeaders = BTreeMap<String, String>;

/// Kafka headers holding `headers`.
pub fn to_kafka(headers: &RecordHeaders) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len()),
        |acc, (key, value)| {
            acc.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        },
    )
}

/// The UTF-8 headers of a Kafka record; headers without a value or not in UTF-8 are left out.
pub fn from_kafka(headers: &impl rdkafka::message::Headers) -> RecordHeaders {
    headers
        .iter()
        .filter_map(|header| {
            let value = std::str::from_utf8(header.value?).ok()?;
            Some((header.key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// A new W3C `traceparent` (version 00, sampled) with random trace and span ids, for a write that has no
/// incoming trace context.
pub fn new_traceparent() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

/// Whether `value` is a well-formed W3C `traceparent` (version 00).
pub fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1] != "0".repeat(32)
        && parts[2] != "0".repeat(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_through_kafka_headers() {
        let headers = RecordHeaders::from([
            (EVENT_ID.to_owned(), uuid::Uuid::now_v7().to_string()),
            (EVENT_TYPE.to_owned(), "OrderPlaced".to_owned()),
            (TRACEPARENT.to_owned(), new_traceparent()),
        ]);
        assert_eq!(from_kafka(&to_kafka(&headers)), headers);
    }

    #[test]
    fn new_traceparents_are_well_formed_and_distinct() {
        let a = new_traceparent();
        assert!(is_traceparent(&a), "{a}");
        assert_ne!(a, new_traceparent());
        assert!(!is_traceparent("00-abc-def-01"));
        assert!(!is_traceparent(&format!(
            "00-{}-{}-01",
            "0".repeat(32),
            "1".repeat(16)
        )));
    }
}
