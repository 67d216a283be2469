//! Which records of the range a replay takes: by event type, key and header.

use serde::{Deserialize, Serialize};

/// The filters of a replay. Values of one kind are alternatives (any of the event types); kinds combine
/// (an event type of those given *and* a key of those given *and* every header given). No filter of a kind
/// lets every record through it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    /// `event_type` header values, e.g. `OrderPlaced`.
    pub event_types: Vec<String>,
    /// Record keys, compared as UTF-8 text (an order id, say).
    pub keys: Vec<String>,
    /// Header name and value pairs, each of which the record must carry.
    pub headers: Vec<(String, String)>,
}

impl Filters {
    /// Whether any filter is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.event_types.is_empty() && self.keys.is_empty() && self.headers.is_empty()
    }

    /// Whether a record with `key` and the header lookup `header` passes.
    pub fn matches<'a>(
        &self,
        key: Option<&[u8]>,
        header: impl Fn(&str) -> Option<&'a [u8]>,
    ) -> bool {
        let any = |wanted: &[String], value: Option<&[u8]>| {
            wanted.is_empty() || value.is_some_and(|v| wanted.iter().any(|w| w.as_bytes() == v))
        };
        any(&self.event_types, header(producers::headers::EVENT_TYPE))
            && any(&self.keys, key)
            && self
                .headers
                .iter()
                .all(|(name, value)| header(name) == Some(value.as_bytes()))
    }
}

/// Parses a `--header` filter, `NAME=VALUE`.
///
/// # Errors
/// A message naming the text when it has no `=` or no name.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a [u8]> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        }
    }

    #[test]
    fn no_filter_takes_every_record() {
        assert!(Filters::default().matches(None, headers(&[])));
    }

    #[test]
    fn values_of_one_kind_are_alternatives_and_kinds_combine() {
        let filters = Filters {
            event_types: vec!["OrderPlaced".into(), "OrderCancelled".into()],
            keys: vec!["k1".into()],
            headers: vec![("origin_region".into(), "east".into())],
        };
        let placed = [("event_type", "OrderPlaced"), ("origin_region", "east")];
        let cancelled = [("event_type", "OrderCancelled"), ("origin_region", "east")];
        assert!(filters.matches(Some(b"k1"), headers(&placed)));
        assert!(filters.matches(Some(b"k1"), headers(&cancelled)));
        assert!(
            !filters.matches(Some(b"k2"), headers(&placed)),
            "another key"
        );
        assert!(!filters.matches(None, headers(&placed)), "no key");
        let completed = [("event_type", "OrderCompleted"), ("origin_region", "east")];
        assert!(
            !filters.matches(Some(b"k1"), headers(&completed)),
            "another type"
        );
        let west = [("event_type", "OrderPlaced"), ("origin_region", "west")];
        assert!(
            !filters.matches(Some(b"k1"), headers(&west)),
            "another header value"
        );
        assert!(
            !filters.matches(Some(b"k1"), headers(&[("event_type", "OrderPlaced")])),
            "header missing"
        );
    }

    #[test]
    fn a_header_filter_needs_a_name_and_an_equals_sign() {
        assert_eq!(parse_header("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(
            parse_header("origin_region="),
            Ok(("origin_region".into(), String::new()))
        );
        assert!(
            parse_header("no-equals")
                .unwrap_err()
                .contains("NAME=VALUE")
        );
        assert!(parse_header("=x").is_err());
    }
}
