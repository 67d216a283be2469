//! Outbox records: what the writing transaction decided to send.

use producers::headers::RecordHeaders;
use sqlx::PgConnection;

use crate::OutboxError;

/// A record ready to send, written in the same transaction as the state change it announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRecord {
    pub topic: String,
    /// The Kafka key: the aggregate id for events, the order id for saga commands.
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: RecordHeaders,
}

/// Writes `records` to the outbox on `conn`, which should be inside the caller's transaction, and returns
/// their outbox ids in the same order.
///
/// Per-key order on the topic is the order of outbox ids, so writers of one key must be serialized; the
/// event store's version check does this for events, and a saga store's for saga commands.
pub async fn enqueue(
    conn: &mut PgConnection,
    records: &[OutboxRecord],
) -> Result<Vec<i64>, OutboxError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut topics = Vec::with_capacity(records.len());
    let mut keys = Vec::with_capacity(records.len());
    let mut payloads = Vec::with_capacity(records.len());
    let mut headers = Vec::with_capacity(records.len());
    for record in records {
        topics.push(record.topic.as_str());
        keys.push(record.key.as_str());
        payloads.push(record.payload.as_slice());
        headers.push(sqlx::types::Json(&record.headers));
    }
    // WITH ORDINALITY keeps the records' order in their ids.
    let ids = sqlx::query_scalar(
        "INSERT INTO outbox (topic, key, payload, headers)
         SELECT topic, key, payload, headers
         FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[])
              WITH ORDINALITY AS r(topic, key, payload, headers, n)
         ORDER BY n
         RETURNING id",
    )
    .bind(&topics)
    .bind(&keys)
    .bind(&payloads)
    .bind(&headers)
    .fetch_all(conn)
    .await?;
    Ok(ids)
}
