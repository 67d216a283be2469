//! The Avro codec in the Confluent wire format: magic byte 0, the 4-byte schema id, the Avro body.
//!
//! Writers encode with the current version of the event type's schema under the subject
//! `<topic>-<full record name>` (`TopicRecordNameStrategy`, since one topic carries several event types);
//! `schema_registry_converter` registers it on first use and caches the id. Readers look the writer's
//! schema up by the id in the record, then resolve the value into this build's current version of the
//! record, so bytes written with any earlier version decode into today's type.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::SchemaError;
use crate::catalog::{Catalog, RecordSchemas};
use crate::convert::{avro_to_json, json_to_avro};

/// The environment variable naming the registry, as Confluent's clients use it.
pub const SCHEMA_REGISTRY_URL: &str = "SCHEMA_REGISTRY_URL";
/// The registry `orderflow registry` serves by default, on Confluent's port.
pub const DEFAULT_REGISTRY_URL: &str = "http://127.0.0.1:8081";

/// The largest record value a consumer has to decode: Kafka's default `message.max.bytes` on the broker
/// (1,048,588), a little above the 1,000,000 orderflow's producers send
/// (`producers::ProducerConfig::max_message_bytes`).
pub const MAX_RECORD_BYTES: usize = 1_048_588;

/// apache-avro's limit on one allocation while decoding (a string's or bytes' length, the items of an array
/// or a map), set for the whole process by [`limit_decode_allocations`].
///
/// A record's body says how many items an array holds before it holds them, and the decoder reserves room
/// for them all first; apache-avro's default of 512 MiB let a record of 10 bytes reserve 512 MiB. The
/// decoded form is larger than the bytes: an item takes one byte on the wire at least and is decoded into an
/// `apache_avro::types::Value` of 56 bytes (apache-avro 0.22 on 64-bit targets), so the longest array a
/// record of [`MAX_RECORD_BYTES`] can really hold needs 56 times its size; 64 times leaves some room. A test
/// decodes such an array.
pub const MAX_DECODE_ALLOCATION_BYTES: usize = 64 * MAX_RECORD_BYTES;

/// How many schema ids a codec's decoder remembers (the writer's schema, or the registry's refusal). When a
/// record names one more, the decoder starts afresh: the schemas in use are fetched again, once each.
///
/// A consumer meets one id per version of each record type on its topics, tens in orderflow; a record with
/// a made-up id (hostile or corrupt) adds one more, and without a bound these would pile up for as long as
/// the process runs.
pub const MAX_CACHED_SCHEMA_IDS: usize = 1_000;

/// The serde field that carries the event type in orderflow's JSON form; in Avro it is the record name.
const TYPE_TAG: &str = "type";

/// A decoded record.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The event type, from the writer's record name.
    pub event_type: String,
    /// The writer's schema id.
    pub schema_id: u32,
    /// The serde form in this build's current version, with the `"type"` tag, ready for
    /// `serde_json::from_value`.
    pub event: Json,
}

/// Sets apache-avro's allocation limit to [`MAX_DECODE_ALLOCATION_BYTES`] for the whole process, unless
/// something set it before (apache-avro takes the first value, and its first decode sets its default), and
/// returns the limit in force. Every [`AvroCodec`] calls it; a binary calls it first thing so that nothing
/// decodes under the default.
pub fn limit_decode_allocations() -> usize {
    let limit = apache_avro::util::max_allocation_bytes(MAX_DECODE_ALLOCATION_BYTES);
    if limit != MAX_DECODE_ALLOCATION_BYTES {
        tracing::warn!(
            limit,
            wanted = MAX_DECODE_ALLOCATION_BYTES,
            "apache-avro's allocation limit was set before orderflow's codec could set it"
        );
    }
    limit
}

/// Encodes and decodes events in the Confluent wire format against a schema registry.
pub struct AvroCodec {
    catalog: &'static Catalog,
    encoder: AvroEncoder,
    decoder: Mutex<Decoder>,
}

/// A decoder and the schema ids it has been asked about, at most [`MAX_CACHED_SCHEMA_IDS`].
///
/// `schema_registry_converter`'s decoder caches every id it is asked about, with no way to bound or evict
/// entries, so the bound replaces the whole decoder.
struct Decoder {
    settings: SrSettings,
    current: Arc<AvroDecoder>,
    ids: HashSet<u32>,
}

impl Decoder {
    fn for_id(&mut self, schema_id: u32) -> Arc<AvroDecoder> {
        if !self.ids.contains(&schema_id) {
            if self.ids.len() >= MAX_CACHED_SCHEMA_IDS {
                tracing::info!(
                    ids = self.ids.len(),
                    "the Avro decoder's cache is full; starting a new one"
                );
                self.current = Arc::new(AvroDecoder::new(self.settings.clone()));
                self.ids.clear();
            }
            self.ids.insert(schema_id);
        }
        self.current.clone()
    }
}

impl std::fmt::Debug for AvroCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroCodec").finish_non_exhaustive()
    }
}

impl AvroCodec {
    /// A codec for the registry at `url` (for example [`DEFAULT_REGISTRY_URL`]).
    ///
    /// # Errors
    /// [`SchemaError::Registry`] when the HTTP client cannot be built, [`SchemaError::Catalog`] when the
    /// embedded schemas are broken.
    pub fn new(url: &str) -> Result<Self, SchemaError> {
        let settings = SrSettings::new_builder(url.to_owned()).no_proxy().build()?;
        Self::with_settings(settings)
    }

    /// A codec with full registry settings (several URLs, authentication, timeouts).
    ///
    /// # Errors
    /// [`SchemaError::Catalog`] when the embedded schemas are broken.
    pub fn with_settings(settings: SrSettings) -> Result<Self, SchemaError> {
        limit_decode_allocations();
        Ok(Self {
            catalog: Catalog::embedded()?,
            encoder: AvroEncoder::new(settings.clone()),
            decoder: Mutex::new(Decoder {
                current: Arc::new(AvroDecoder::new(settings.clone())),
                settings,
                ids: HashSet::new(),
            }),
        })
    }

    /// Encodes the serde form of an event of `event_type` for `topic`, and returns the bytes and the
    /// schema id.
    ///
    /// # Errors
    /// [`SchemaError::UnknownEventType`], [`SchemaError::Mismatch`] naming the offending field when the
    /// event does not match its schema, [`SchemaError::Registry`] when the schema cannot be registered
    /// (for example because the registry finds it incompatible).
    pub async fn encode(
        &self,
        topic: &str,
        event_type: &str,
        event: &Json,
    ) -> Result<(Vec<u8>, u32), SchemaError> {
        let record = self.catalog.get(event_type)?;
        let value = to_record_value(record, event)?;
        let Value::Record(fields) = value else {
            unreachable!("a record schema gives a record value");
        };
        let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
            topic.to_owned(),
            SuppliedSchema::new(
                Some(record.full_name.clone()),
                SchemaType::Avro,
                record.current().text.to_owned(),
            ),
        );
        let fields = fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        let bytes = self.encoder.encode(fields, strategy).await.map_err(|e| {
            // The converter keeps every failure it takes for final, a 500 among them, and a 409 that
            // an operator may fix: forget them, so the next encode asks the registry again.
            self.encoder.remove_errors_from_cache();
            registry_error(e)
        })?;
        let schema_id = schema_id(&bytes)?;
        Ok((bytes, schema_id))
    }

    /// Decodes a record value in the Confluent wire format.
    ///
    /// # Errors
    /// [`SchemaError::Decode`] for bytes that are not in the wire format or do not decode,
    /// [`SchemaError::UnknownEventType`] for a record this build has no schema for, and
    /// [`SchemaError::Registry`] when the writer's schema cannot be fetched.
    pub async fn decode(&self, bytes: &[u8]) -> Result<Decoded, SchemaError> {
        let schema_id = schema_id(bytes)?;
        let decoder = self
            .decoder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .for_id(schema_id);
        let decoded = decoder
            .decode(Some(bytes))
            .await
            .map_err(|e| match registry_error(e) {
                // Final (no such schema, bytes that do not decode): the converter keeps the answer.
                SchemaError::Registry {
                    retriable: false,
                    source,
                } => SchemaError::Decode(source.to_string()),
                // It takes a 500 for final too and would keep it: let it ask again next time.
                retriable => {
                    decoder.remove_errors_from_cache();
                    retriable
                }
            })?;
        let name = decoded
            .name
            .ok_or_else(|| SchemaError::Decode(format!("schema {schema_id} is not a record")))?;
        let full_name = name.fullname(None);
        let record = self
            .catalog
            .by_full_name(&full_name)
            .ok_or_else(|| SchemaError::UnknownEventType(full_name.clone()))?;
        let current = record.current().schema.clone();
        let value = decoded.value.resolve(&current).map_err(|e| {
            SchemaError::Decode(format!(
                "{full_name} (schema {schema_id}) does not resolve into this build's version: {e}"
            ))
        })?;
        let mut event =
            avro_to_json(&value).map_err(|m| SchemaError::Decode(format!("{full_name}: {m}")))?;
        if let Json::Object(fields) = &mut event {
            fields.insert(
                TYPE_TAG.to_owned(),
                Json::String(record.event_type.to_owned()),
            );
        }
        Ok(Decoded {
            event_type: record.event_type.to_owned(),
            schema_id,
            event,
        })
    }

    /// Decodes a record value into the message type `T` (an event enum tagged by `"type"`).
    ///
    /// # Errors
    /// As [`decode`](Self::decode), and [`SchemaError::Decode`] when the event is not one of `T`'s.
    pub async fn decode_as<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, SchemaError> {
        let decoded = self.decode(bytes).await?;
        serde_json::from_value(decoded.event).map_err(|e| {
            SchemaError::Decode(format!(
                "{} is not a {}: {e}",
                decoded.event_type,
                std::any::type_name::<T>()
            ))
        })
    }
}

/// The Avro value of an event's serde form under the current schema of its record, without the type tag.
///
/// # Errors
/// [`SchemaError::Mismatch`] naming the first value that does not fit.
pub fn to_record_value(record: &RecordSchemas, event: &Json) -> Result<Value, SchemaError> {
    let mismatch = |mismatch| SchemaError::Mismatch {
        event_type: record.event_type.to_owned(),
        full_name: record.full_name.clone(),
        mismatch,
    };
    let mut body = event.clone();
    if let Json::Object(fields) = &mut body {
        match fields.remove(TYPE_TAG) {
            Some(Json::String(tag)) if tag != record.event_type => {
                return Err(SchemaError::UnknownEventType(format!(
                    "{tag} (encoded as {})",
                    record.event_type
                )));
            }
            _ => {}
        }
    }
    json_to_avro(&body, &record.current().schema).map_err(mismatch)
}

/// A failed registry call as a [`SchemaError::Registry`], retriable unless the registry said the request
/// itself is wrong. schema_registry_converter marks only 502 and 503 as retriable; a 500 (the registry's
/// database is down), 504, 408 and 429 pass as well, and so do 401 and 403 (credentials being rotated):
/// holding the partition until an operator acts is right, dead-lettering every record is not. A 404 (no
/// such schema), a 409 (incompatible) or a 422 (invalid schema) stays final, as does any failure to decode
/// the body.
fn registry_error(source: SRCError) -> SchemaError {
    let status = source
        .error
        .strip_prefix("HTTP request to schema registry failed with status ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok());
    let retriable = source.retriable || matches!(status, Some(401 | 403 | 408 | 429 | 500..=599));
    SchemaError::Registry { retriable, source }
}

/// The schema id of a record in the Confluent wire format.
///
/// # Errors
/// [`SchemaError::Decode`] when the bytes do not start with magic byte 0 and a 4-byte id.
pub fn schema_id(bytes: &[u8]) -> Result<u32, SchemaError> {
    match bytes {
        [0, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(SchemaError::Decode(format!(
            "not in the Confluent wire format (magic byte 0 and a 4-byte schema id); starts with {:?}",
            &bytes[..bytes.len().min(5)]
        ))),
    }
}

impl outbox::Codec for AvroCodec {
    async fn encode(
        &self,
        topic: &str,
        event_type: &str,
        event: &Json,
    ) -> Result<outbox::Encoded, outbox::codec::CodecError> {
        let (bytes, schema_id) = Self::encode(self, topic, event_type, event).await?;
        Ok(outbox::Encoded {
            bytes,
            schema_id: Some(schema_id),
        })
    }
}
