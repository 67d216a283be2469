//! The event store: streams of events per aggregate, with optimistic concurrency, and their outbox records
//! in the same transaction.

use domain::{Aggregate, DomainError, EventId, Message};
use producers::headers::{self, RecordHeaders};
use producers::topics::Topics;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::OutboxError;
use crate::codec::{Codec, JsonCodec};
use crate::records::{OutboxRecord, enqueue};

/// Where a write comes from: carried into every event row and record header it produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The order the write belongs to (the saga's correlation id).
    pub correlation_id: Uuid,
    /// The event id of the message that caused the write, if any.
    pub causation_id: Option<Uuid>,
    /// W3C trace context of the writing span; a fresh one is made when absent.
    pub traceparent: Option<String>,
}

impl Metadata {
    /// Metadata of a write that starts a conversation: correlated by `correlation_id`, caused by nothing.
    pub fn new(correlation_id: Uuid) -> Self {
        Self {
            correlation_id,
            causation_id: None,
            traceparent: None,
        }
    }

    /// Metadata of a write caused by event `causation_id`.
    pub fn caused_by(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }
}

/// An aggregate as of a version of its stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<A> {
    pub state: A,
    /// The number of events in the stream; 0 for an aggregate that does not exist yet.
    pub version: i64,
}

/// The result of a command that was accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Executed<A: Aggregate> {
    pub state: A,
    pub version: i64,
    pub events: Vec<A::Event>,
}

/// Streams of events in Postgres, and the outbox records that carry them to Kafka.
#[derive(Clone, Debug)]
pub struct EventStore<C = JsonCodec> {
    pool: PgPool,
    codec: C,
    topics: Topics,
    region: String,
}

impl EventStore<JsonCodec> {
    /// A store that encodes records as JSON.
    pub fn json(pool: PgPool, topics: Topics, region: impl Into<String>) -> Self {
        Self::new(pool, JsonCodec, topics, region)
    }
}

impl<C: Codec> EventStore<C> {
    /// A store writing records for `topics`, encoded with `codec`, marked as written in `region`.
    pub fn new(pool: PgPool, codec: C, topics: Topics, region: impl Into<String>) -> Self {
        Self {
            pool,
            codec,
            topics,
            region: region.into(),
        }
    }

    /// The pool the store writes with.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Loads the stream of `id` and rebuilds the aggregate with `evolve`.
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<Loaded<A>, OutboxError> {
        let mut conn = self.pool.acquire().await?;
        self.load_with::<A>(&mut conn, id).await
    }

    /// [`load`](Self::load) on the caller's connection or transaction.
    pub async fn load_with<A: Aggregate>(
        &self,
        conn: &mut PgConnection,
        id: &str,
    ) -> Result<Loaded<A>, OutboxError> {
        let rows: Vec<(String, i16, serde_json::Value)> = sqlx::query_as(
            "SELECT event_type, event_version, payload FROM events
             WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY version",
        )
        .bind(A::NAME)
        .bind(id)
        .fetch_all(conn)
        .await?;
        let version = rows.len() as i64;
        let mut state = A::default();
        for (event_type, event_version, payload) in rows {
            if event_version != <A::Event as Message>::CURRENT_VERSION as i16 {
                return Err(OutboxError::UnsupportedEventVersion {
                    aggregate_id: id.to_owned(),
                    event_type,
                    version: event_version,
                });
            }
            let event: A::Event =
                serde_json::from_value(payload).map_err(|e| OutboxError::Codec {
                    what: format!("stored {event_type} of {} {id}", A::NAME),
                    source: e.into(),
                })?;
            state = state.evolve(&event);
        }
        Ok(Loaded { state, version })
    }

    /// Appends `events` to the stream of `id`, which must be at `expected_version`, and writes their outbox
    /// records, all on `conn` (the caller's transaction). Returns the new version.
    ///
    /// A concurrent writer that appended first makes this fail with [`OutboxError::Conflict`]; the caller's
    /// transaction must then be rolled back. This check serializes the writers of a stream, which is what
    /// keeps its records in commit order on the topic (the relay publishes each key in outbox-id order).
    pub async fn append<A: Aggregate>(
        &self,
        conn: &mut PgConnection,
        id: &str,
        expected_version: i64,
        events: &[A::Event],
        metadata: &Metadata,
    ) -> Result<i64, OutboxError> {
        if events.is_empty() {
            return Err(OutboxError::Empty(format!("{} {id}", A::NAME)));
        }
        let topic = self.topics.events(A::SERVICE);
        let traceparent = traceparent(metadata);
        let mut versions = Vec::with_capacity(events.len());
        let mut event_ids = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut type_versions = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut records = Vec::with_capacity(events.len());
        for (version, event) in (expected_version + 1..).zip(events) {
            let (event_id, payload, record) = self
                .record(&topic, id, event, metadata, &traceparent)
                .await?;
            records.push(record);
            versions.push(version);
            event_ids.push(event_id);
            types.push(event.event_type());
            type_versions.push(event.version() as i16);
            payloads.push(payload);
        }
        let inserted = sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, version, event_id, event_type,
                                 event_version, payload, correlation_id, causation_id)
             SELECT $1, $2, version, event_id, event_type, event_version, payload, $3, $4
             FROM unnest($5::bigint[], $6::uuid[], $7::text[], $8::smallint[], $9::jsonb[])
                  AS e(version, event_id, event_type, event_version, payload)",
        )
        .bind(A::NAME)
        .bind(id)
        .bind(metadata.correlation_id)
        .bind(metadata.causation_id)
        .bind(&versions)
        .bind(&event_ids)
        .bind(&types)
        .bind(&type_versions)
        .bind(&payloads)
        .execute(&mut *conn)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.constraint() == Some("events_pkey") => {
                return Err(OutboxError::Conflict {
                    aggregate_type: A::NAME,
                    aggregate_id: id.to_owned(),
                    expected: expected_version,
                });
            }
            Err(e) => return Err(e.into()),
        }
        enqueue(conn, &records).await?;
        Ok(expected_version + events.len() as i64)
    }

    /// Writes `messages` that are not events of an aggregate stream (saga commands, a service's replies) to
    /// the outbox of `topic` on `conn`, which should be inside the caller's transaction, keyed by `key` and
    /// with the same headers as events. Returns their event ids.
    ///
    /// Nothing here serializes writers: the caller must make sure two transactions never write messages of
    /// one key at once (a row lock or a version check on what the messages are about), or the topic may
    /// carry them in another order than their commits (see [`records::enqueue`](crate::records::enqueue)).
    ///
    /// # Errors
    /// [`OutboxError::Codec`] when the codec refuses a message, and database errors.
    pub async fn publish<M: Message>(
        &self,
        conn: &mut PgConnection,
        topic: &str,
        key: &str,
        messages: &[M],
        metadata: &Metadata,
    ) -> Result<Vec<Uuid>, OutboxError> {
        let traceparent = traceparent(metadata);
        let mut records = Vec::with_capacity(messages.len());
        let mut ids = Vec::with_capacity(messages.len());
        for message in messages {
            let (event_id, _, record) = self
                .record(topic, key, message, metadata, &traceparent)
                .await?;
            records.push(record);
            ids.push(event_id);
        }
        enqueue(conn, &records).await?;
        Ok(ids)
    }

    /// The outbox record of `event` for `topic` under `key`, with a fresh event id, and the event's serde
    /// form.
    async fn record<E: Message>(
        &self,
        topic: &str,
        key: &str,
        event: &E,
        metadata: &Metadata,
        traceparent: &str,
    ) -> Result<(Uuid, serde_json::Value, OutboxRecord), OutboxError> {
        let event_id = Uuid::from(EventId::new());
        let payload = serde_json::to_value(event).map_err(|e| OutboxError::Codec {
            what: format!("{} of {key}", event.event_type()),
            source: e.into(),
        })?;
        let encoded = self
            .codec
            .encode(topic, event.event_type(), &payload)
            .await
            .map_err(|source| OutboxError::Codec {
                what: format!("{} for {topic}", event.event_type()),
                source,
            })?;
        let mut record_headers = RecordHeaders::from([
            (headers::EVENT_ID.to_owned(), event_id.to_string()),
            (
                headers::EVENT_TYPE.to_owned(),
                event.event_type().to_owned(),
            ),
            (
                headers::EVENT_VERSION.to_owned(),
                event.version().to_string(),
            ),
            (
                headers::CORRELATION_ID.to_owned(),
                metadata.correlation_id.to_string(),
            ),
            (headers::TRACEPARENT.to_owned(), traceparent.to_owned()),
            (headers::ORIGIN_REGION.to_owned(), self.region.clone()),
        ]);
        if let Some(causation) = metadata.causation_id {
            record_headers.insert(headers::CAUSATION_ID.to_owned(), causation.to_string());
        }
        if let Some(schema_id) = encoded.schema_id {
            record_headers.insert(headers::SCHEMA_ID.to_owned(), schema_id.to_string());
        }
        let record = OutboxRecord {
            topic: topic.to_owned(),
            key: key.to_owned(),
            payload: encoded.bytes,
            headers: record_headers,
        };
        Ok((event_id, payload, record))
    }

    /// Loads `id`, decides `command` and, when it produced events, appends them with their outbox records in
    /// one transaction.
    ///
    /// The outer `Result` is infrastructure (retry a [`OutboxError::Conflict`] or a database error); the inner
    /// one is the business answer, which is not a failure.
    pub async fn execute<A: Aggregate>(
        &self,
        id: &str,
        command: A::Command,
        metadata: &Metadata,
    ) -> Result<Result<Executed<A>, DomainError>, OutboxError> {
        let mut tx = self.pool.begin().await?;
        let loaded = self.load_with::<A>(&mut tx, id).await?;
        let (state, events) = match loaded.state.execute(command) {
            Ok(decided) => decided,
            Err(rejected) => return Ok(Err(rejected)),
        };
        let version = if events.is_empty() {
            loaded.version
        } else {
            let version = self
                .append::<A>(&mut tx, id, loaded.version, &events, metadata)
                .await?;
            tx.commit().await?;
            version
        };
        Ok(Ok(Executed {
            state,
            version,
            events,
        }))
    }
}

/// The metadata's trace context, or a new one.
fn traceparent(metadata: &Metadata) -> String {
    metadata
        .traceparent
        .clone()
        .unwrap_or_else(headers::new_traceparent)
}
