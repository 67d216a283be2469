//! The envelopes the runtime adds to a record it dead-letters ([`DeadLetterEnvelope`], `dlq.*` headers)
//! or sends to `<topic>.retry` ([`RetryEnvelope`], `retry.*` headers): typed, and mapped to and from their
//! headers in this one place. The runtime writes them; the runtime (retries) and operators
//! ([`dlq`](crate::dlq), `orderflow dlq`) read them back.
//!
//! The header names and their text forms are the wire format of existing topics: they do not change.
//! Numbers are decimal, times milliseconds since the Unix epoch. Reading is strict: a missing header or
//! one that does not parse is an [`EnvelopeError`] naming the header.
//!
//! ```
//! use consumers::envelope::{DeadLetterEnvelope, FailureClass};
//!
//! let envelope = DeadLetterEnvelope {
//!     source_topic: "orders.events".to_owned(),
//!     source_partition: 0,
//!     source_offset: 41,
//!     consumer_group: "payments".to_owned(),
//!     error_class: FailureClass::Poison,
//!     error_message: "cannot decode the record".to_owned(),
//!     attempts: 1,
//!     first_failed_at_ms: 1_700_000_000_000,
//!     dead_lettered_at_ms: 1_700_000_000_005,
//! };
//! let headers = envelope.to_headers();
//! assert_eq!(headers["dlq.source_offset"], "41");
//! assert_eq!(DeadLetterEnvelope::from_headers(&headers), Ok(envelope));
//! ```

use core::fmt;
use core::str::FromStr;

use producers::headers::RecordHeaders;

/// Headers a dead letter carries besides the original record's own.
pub mod dead_letter_headers {
    /// Every header of the envelope starts with it.
    pub const PREFIX: &str = "dlq.";
    pub const SOURCE_TOPIC: &str = "dlq.source_topic";
    pub const SOURCE_PARTITION: &str = "dlq.source_partition";
    pub const SOURCE_OFFSET: &str = "dlq.source_offset";
    pub const CONSUMER_GROUP: &str = "dlq.consumer_group";
    /// `poison` or `retryable` ([`FailureClass`](super::FailureClass)).
    pub const ERROR_CLASS: &str = "dlq.error_class";
    pub const ERROR_MESSAGE: &str = "dlq.error_message";
    pub const ATTEMPTS: &str = "dlq.attempts";
    /// Milliseconds since the Unix epoch.
    pub const FIRST_FAILED_AT: &str = "dlq.first_failed_at_ms";
    pub const DEAD_LETTERED_AT: &str = "dlq.dead_lettered_at_ms";
}

/// Headers a record on a `<topic>.retry` topic carries besides the original record's own.
pub mod retry_headers {
    /// Every header of the envelope starts with it.
    pub const PREFIX: &str = "retry.";
    /// The topic the record was first consumed from.
    pub const SOURCE_TOPIC: &str = "retry.source_topic";
    pub const SOURCE_PARTITION: &str = "retry.source_partition";
    pub const SOURCE_OFFSET: &str = "retry.source_offset";
    /// How many retries this is (1 for the first).
    pub const ATTEMPT: &str = "retry.attempt";
    /// Not to be applied before this time, in milliseconds since the Unix epoch.
    pub const NOT_BEFORE: &str = "retry.not_before_ms";
    pub const FIRST_FAILED_AT: &str = "retry.first_failed_at_ms";
    pub const LAST_ERROR: &str = "retry.last_error";
}

/// Why a record was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// It can never be applied ([`HandlerError::Poison`](crate::HandlerError::Poison)).
    Poison,
    /// It failed after every delayed retry ([`HandlerError::Retryable`](crate::HandlerError::Retryable)).
    Retryable,
}

impl FailureClass {
    /// Every class.
    pub const ALL: [Self; 2] = [Self::Poison, Self::Retryable];

    /// The class's name in the `dlq.error_class` header and in metrics: `poison` or `retryable`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Poison => "poison",
            Self::Retryable => "retryable",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureClass {
    type Err = UnknownFailureClass;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|class| class.as_str() == name)
            .ok_or_else(|| UnknownFailureClass(name.to_owned()))
    }
}

/// A name that is no [`FailureClass::as_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure class {0:?}")]
pub struct UnknownFailureClass(pub String);

/// Why an envelope cannot be read from a record's headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The header is not there.
    #[error("no {header} header")]
    Missing { header: &'static str },
    /// The header's value does not parse as what it holds.
    #[error("header {header} is {value:?}, not {expected}")]
    Invalid {
        header: &'static str,
        value: String,
        /// What the value should be, e.g. `"a partition number"`.
        expected: &'static str,
    },
}

/// What the runtime adds to a record it dead-letters: where the record was first read, by which group,
/// and why it gave up. The original key, value and headers travel with it unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterEnvelope {
    /// For a record that went through delayed retries, the topic it was read from before them.
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub consumer_group: String,
    pub error_class: FailureClass,
    pub error_message: String,
    /// Handling attempts in all, delayed retries included.
    pub attempts: u32,
    pub first_failed_at_ms: u128,
    pub dead_lettered_at_ms: u128,
}

impl DeadLetterEnvelope {
    /// The envelope's headers (`dlq.*`), to add to the record's own.
    #[must_use]
    pub fn to_headers(&self) -> RecordHeaders {
        use dead_letter_headers as h;
        [
            (h::SOURCE_TOPIC, self.source_topic.clone()),
            (h::SOURCE_PARTITION, self.source_partition.to_string()),
            (h::SOURCE_OFFSET, self.source_offset.to_string()),
            (h::CONSUMER_GROUP, self.consumer_group.clone()),
            (h::ERROR_CLASS, self.error_class.as_str().to_owned()),
            (h::ERROR_MESSAGE, self.error_message.clone()),
            (h::ATTEMPTS, self.attempts.to_string()),
            (h::FIRST_FAILED_AT, self.first_failed_at_ms.to_string()),
            (h::DEAD_LETTERED_AT, self.dead_lettered_at_ms.to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// The envelope of a dead letter, from its headers (other headers are ignored).
    ///
    /// # Errors
    /// [`EnvelopeError`] naming the first header that is missing or does not parse.
    pub fn from_headers(headers: &RecordHeaders) -> Result<Self, EnvelopeError> {
        use dead_letter_headers as h;
        Ok(Self {
            source_topic: text(headers, h::SOURCE_TOPIC)?,
            source_partition: parse(headers, h::SOURCE_PARTITION, "a partition number")?,
            source_offset: parse(headers, h::SOURCE_OFFSET, "an offset")?,
            consumer_group: text(headers, h::CONSUMER_GROUP)?,
            error_class: parse(headers, h::ERROR_CLASS, "poison or retryable")?,
            error_message: text(headers, h::ERROR_MESSAGE)?,
            attempts: parse(headers, h::ATTEMPTS, "a number of attempts")?,
            first_failed_at_ms: parse(headers, h::FIRST_FAILED_AT, "milliseconds")?,
            dead_lettered_at_ms: parse(headers, h::DEAD_LETTERED_AT, "milliseconds")?,
        })
    }

    /// `headers` without the envelope's (`dlq.*`): those of the record before it was dead-lettered.
    #[must_use]
    pub fn strip(headers: &RecordHeaders) -> RecordHeaders {
        without_prefix(headers, dead_letter_headers::PREFIX)
    }
}

/// What the runtime adds to a record it sends to `<topic>.retry`: where it was first read, which retry
/// this is, and when it may be applied again. The original key, value and headers travel with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryEnvelope {
    /// The topic the record was first read from (the retry topic is `<source_topic>.retry`).
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    /// Which retry this is (1 for the first).
    pub attempt: u32,
    pub not_before_ms: u128,
    pub first_failed_at_ms: u128,
    pub last_error: String,
}

impl RetryEnvelope {
    /// The envelope's headers (`retry.*`), to add to the record's own.
    #[must_use]
    pub fn to_headers(&self) -> RecordHeaders {
        use retry_headers as h;
        [
            (h::SOURCE_TOPIC, self.source_topic.clone()),
            (h::SOURCE_PARTITION, self.source_partition.to_string()),
            (h::SOURCE_OFFSET, self.source_offset.to_string()),
            (h::ATTEMPT, self.attempt.to_string()),
            (h::NOT_BEFORE, self.not_before_ms.to_string()),
            (h::FIRST_FAILED_AT, self.first_failed_at_ms.to_string()),
            (h::LAST_ERROR, self.last_error.clone()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// The envelope of a record of a retry topic, from its headers (other headers are ignored).
    ///
    /// # Errors
    /// [`EnvelopeError`] naming the first header that is missing or does not parse.
    pub fn from_headers(headers: &RecordHeaders) -> Result<Self, EnvelopeError> {
        use retry_headers as h;
        Ok(Self {
            source_topic: text(headers, h::SOURCE_TOPIC)?,
            source_partition: parse(headers, h::SOURCE_PARTITION, "a partition number")?,
            source_offset: parse(headers, h::SOURCE_OFFSET, "an offset")?,
            attempt: parse(headers, h::ATTEMPT, "a retry number")?,
            not_before_ms: parse(headers, h::NOT_BEFORE, "milliseconds")?,
            first_failed_at_ms: parse(headers, h::FIRST_FAILED_AT, "milliseconds")?,
            last_error: text(headers, h::LAST_ERROR)?,
        })
    }

    /// `headers` without the envelope's (`retry.*`): those of the record before it was sent to retry.
    #[must_use]
    pub fn strip(headers: &RecordHeaders) -> RecordHeaders {
        without_prefix(headers, retry_headers::PREFIX)
    }
}

fn text(headers: &RecordHeaders, header: &'static str) -> Result<String, EnvelopeError> {
    headers
        .get(header)
        .cloned()
        .ok_or(EnvelopeError::Missing { header })
}

fn parse<T: FromStr>(
    headers: &RecordHeaders,
    header: &'static str,
    expected: &'static str,
) -> Result<T, EnvelopeError> {
    let value = headers
        .get(header)
        .ok_or(EnvelopeError::Missing { header })?;
    value.parse().map_err(|_| EnvelopeError::Invalid {
        header,
        value: value.clone(),
        expected,
    })
}

fn without_prefix(headers: &RecordHeaders, prefix: &str) -> RecordHeaders {
    headers
        .iter()
        .filter(|(name, _)| !name.starts_with(prefix))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_letter() -> DeadLetterEnvelope {
        DeadLetterEnvelope {
            source_topic: "orders.events".to_owned(),
            source_partition: 2,
            source_offset: 9_000_000_000,
            consumer_group: "orderflow-payments".to_owned(),
            error_class: FailureClass::Retryable,
            error_message: "provider timed out".to_owned(),
            attempts: 3,
            first_failed_at_ms: 1_700_000_000_000,
            dead_lettered_at_ms: 1_700_000_060_000,
        }
    }

    fn retry() -> RetryEnvelope {
        RetryEnvelope {
            source_topic: "payments.commands".to_owned(),
            source_partition: 0,
            source_offset: 17,
            attempt: 2,
            not_before_ms: 1_700_000_010_000,
            first_failed_at_ms: 1_700_000_000_000,
            last_error: "provider timed out".to_owned(),
        }
    }

    /// The record's own headers and the envelope's, as they are on the wire.
    fn on_a_record(envelope: RecordHeaders) -> RecordHeaders {
        let mut headers = RecordHeaders::from([
            (
                "event_id".to_owned(),
                "0192f5a4-8d3e-7c1a-9b2f-3c4d5e6f7a8b".to_owned(),
            ),
            ("event_type".to_owned(), "OrderPlaced".to_owned()),
        ]);
        headers.extend(envelope);
        headers
    }

    #[test]
    fn a_dead_letter_envelope_reads_back_from_its_headers() {
        let headers = on_a_record(dead_letter().to_headers());
        assert_eq!(
            DeadLetterEnvelope::from_headers(&headers),
            Ok(dead_letter())
        );
        assert_eq!(headers[dead_letter_headers::ERROR_CLASS], "retryable");
        assert_eq!(headers[dead_letter_headers::SOURCE_OFFSET], "9000000000");
        assert_eq!(
            DeadLetterEnvelope::strip(&headers)
                .keys()
                .collect::<Vec<_>>(),
            ["event_id", "event_type"]
        );
    }

    #[test]
    fn a_retry_envelope_reads_back_from_its_headers() {
        let headers = on_a_record(retry().to_headers());
        assert_eq!(RetryEnvelope::from_headers(&headers), Ok(retry()));
        assert_eq!(headers[retry_headers::NOT_BEFORE], "1700000010000");
        assert_eq!(
            RetryEnvelope::strip(&headers).keys().collect::<Vec<_>>(),
            ["event_id", "event_type"]
        );
    }

    #[test]
    fn the_header_names_are_those_on_existing_topics() {
        let names: Vec<String> = dead_letter().to_headers().into_keys().collect();
        assert_eq!(
            names,
            [
                "dlq.attempts",
                "dlq.consumer_group",
                "dlq.dead_lettered_at_ms",
                "dlq.error_class",
                "dlq.error_message",
                "dlq.first_failed_at_ms",
                "dlq.source_offset",
                "dlq.source_partition",
                "dlq.source_topic",
            ]
        );
        let names: Vec<String> = retry().to_headers().into_keys().collect();
        assert_eq!(
            names,
            [
                "retry.attempt",
                "retry.first_failed_at_ms",
                "retry.last_error",
                "retry.not_before_ms",
                "retry.source_offset",
                "retry.source_partition",
                "retry.source_topic",
            ]
        );
    }

    #[test]
    fn a_missing_header_is_named() {
        let mut headers = dead_letter().to_headers();
        headers.remove(dead_letter_headers::SOURCE_PARTITION);
        let error = DeadLetterEnvelope::from_headers(&headers).unwrap_err();
        assert_eq!(
            error,
            EnvelopeError::Missing {
                header: "dlq.source_partition"
            }
        );
        assert_eq!(error.to_string(), "no dlq.source_partition header");
        let mut headers = retry().to_headers();
        headers.remove(retry_headers::LAST_ERROR);
        assert_eq!(
            RetryEnvelope::from_headers(&headers),
            Err(EnvelopeError::Missing {
                header: "retry.last_error"
            })
        );
    }

    #[test]
    fn a_bad_number_is_named_with_its_value() {
        let mut headers = dead_letter().to_headers();
        headers.insert(
            dead_letter_headers::SOURCE_OFFSET.to_owned(),
            "12a".to_owned(),
        );
        let error = DeadLetterEnvelope::from_headers(&headers).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"header dlq.source_offset is "12a", not an offset"#
        );
        let mut headers = retry().to_headers();
        headers.insert(retry_headers::ATTEMPT.to_owned(), "-1".to_owned());
        assert_eq!(
            RetryEnvelope::from_headers(&headers),
            Err(EnvelopeError::Invalid {
                header: "retry.attempt",
                value: "-1".to_owned(),
                expected: "a retry number"
            })
        );
        let mut headers = dead_letter().to_headers();
        headers.insert(
            dead_letter_headers::ERROR_CLASS.to_owned(),
            "Poison".to_owned(),
        );
        assert!(matches!(
            DeadLetterEnvelope::from_headers(&headers),
            Err(EnvelopeError::Invalid {
                header: "dlq.error_class",
                ..
            })
        ));
    }

    #[test]
    fn a_failure_class_reads_back_from_its_name() {
        for class in FailureClass::ALL {
            assert_eq!(class.as_str().parse::<FailureClass>(), Ok(class));
            assert_eq!(class.to_string(), class.as_str());
        }
        assert_eq!(FailureClass::Poison.as_str(), "poison");
        assert_eq!(
            "fatal".parse::<FailureClass>(),
            Err(UnknownFailureClass("fatal".to_owned()))
        );
    }
}
