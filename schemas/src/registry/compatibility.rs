//! Compatibility levels and the check of a new schema against earlier versions of its subject.
//!
//! The decision is apache-avro's (`SchemaCompatibility::can_read`); this module only picks which pairs to
//! ask about. A pair that apache-avro calls partially compatible (reading may fail for some values, for
//! example a union narrowed to one of its branches) counts as incompatible, as it does in Confluent's checker.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

use super::error::RegistryError;

/// A subject's compatibility level, as Confluent names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Any schema is accepted.
    None,
    /// The new schema reads data written with the latest version.
    Backward,
    /// The new schema reads data written with every live version.
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every live version reads data written with the new schema.
    ForwardTransitive,
    /// Backward and forward, against the latest version.
    Full,
    /// Backward and forward, against every live version.
    FullTransitive,
}

impl Level {
    /// Confluent's default, and this registry's when no level was set.
    pub const DEFAULT: Level = Level::Backward;

    /// The name Confluent uses on the wire and this registry stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        match self {
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive => true,
            Level::None | Level::Backward | Level::Forward | Level::Full => false,
        }
    }

    /// Whether the new schema must read data written with the old one.
    fn backward(self) -> bool {
        match self {
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive => {
                true
            }
            Level::None | Level::Forward | Level::ForwardTransitive => false,
        }
    }

    /// Whether the old schema must read data written with the new one.
    fn forward(self) -> bool {
        match self {
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive => true,
            Level::None | Level::Backward | Level::BackwardTransitive => false,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = RegistryError;

    /// Parses a level name, in any letter case (Confluent's clients send upper case).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_uppercase().as_str() {
            "NONE" => Ok(Level::None),
            "BACKWARD" => Ok(Level::Backward),
            "BACKWARD_TRANSITIVE" => Ok(Level::BackwardTransitive),
            "FORWARD" => Ok(Level::Forward),
            "FORWARD_TRANSITIVE" => Ok(Level::ForwardTransitive),
            "FULL" => Ok(Level::Full),
            "FULL_TRANSITIVE" => Ok(Level::FullTransitive),
            _ => Err(RegistryError::InvalidCompatibilityLevel(name.to_owned())),
        }
    }
}

/// An earlier version of a subject, as the check needs it.
pub struct Earlier<'a> {
    pub version: i32,
    pub schema: &'a Schema,
}

/// Checks `new` against `earlier` (live versions, oldest first) under `level`, and returns why it is
/// incompatible: an empty list means compatible. Non-transitive levels look at the last of `earlier` only.
pub fn check(level: Level, new: &Schema, earlier: &[Earlier<'_>]) -> Vec<String> {
    let against: &[Earlier<'_>] = if level.transitive() {
        earlier
    } else {
        match earlier.split_last() {
            Some((last, _)) => std::slice::from_ref(last),
            None => &[],
        }
    };
    let mut messages = Vec::new();
    for old in against {
        if level.backward()
            && let Some(why) = cannot_read(old.schema, new)
        {
            messages.push(format!(
                "the new schema cannot read data written with version {}: {why}",
                old.version
            ));
        }
        if level.forward()
            && let Some(why) = cannot_read(new, old.schema)
        {
            messages.push(format!(
                "version {} cannot read data written with the new schema: {why}",
                old.version
            ));
        }
    }
    messages
}

/// Why `reader` cannot read every datum written with `writer`, or `None` when it can.
fn cannot_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(Compatibility::Partial) => Some(
            "only partially compatible: some values written with one cannot be read with the other"
                .to_owned(),
        ),
        // The Debug form carries the cause chain (which field, which type).
        Err(e) => Some(format!("{e:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"R","fields":[{fields}]}}"#
        ))
        .unwrap()
    }

    fn levels() -> [Level; 7] {
        [
            Level::None,
            Level::Backward,
            Level::BackwardTransitive,
            Level::Forward,
            Level::ForwardTransitive,
            Level::Full,
            Level::FullTransitive,
        ]
    }

    #[test]
    fn level_names_round_trip_in_any_case() {
        for level in levels() {
            assert_eq!(level.as_str().parse::<Level>().unwrap(), level);
            assert_eq!(
                level.as_str().to_lowercase().parse::<Level>().unwrap(),
                level
            );
        }
        assert!(matches!(
            "SIDEWAYS".parse::<Level>(),
            Err(RegistryError::InvalidCompatibilityLevel(_))
        ));
    }

    #[test]
    fn adding_a_field_without_default_is_forward_but_not_backward() {
        let v1 = schema(r#"{"name":"a","type":"string"}"#);
        let v2 = schema(r#"{"name":"a","type":"string"},{"name":"b","type":"int"}"#);
        let earlier = [Earlier {
            version: 1,
            schema: &v1,
        }];
        assert!(check(Level::None, &v2, &earlier).is_empty());
        assert!(!check(Level::Backward, &v2, &earlier).is_empty());
        assert!(check(Level::Forward, &v2, &earlier).is_empty());
        assert!(!check(Level::Full, &v2, &earlier).is_empty());
    }

    #[test]
    fn transitive_levels_look_past_the_latest_version() {
        // v1 has no b; v2 adds b with a default; v3 drops b's default: v3 reads v2's data but not v1's.
        let v1 = schema(r#"{"name":"a","type":"string"}"#);
        let v2 = schema(r#"{"name":"a","type":"string"},{"name":"b","type":"int","default":0}"#);
        let v3 = schema(r#"{"name":"a","type":"string"},{"name":"b","type":"int"}"#);
        let earlier = [
            Earlier {
                version: 1,
                schema: &v1,
            },
            Earlier {
                version: 2,
                schema: &v2,
            },
        ];
        assert!(check(Level::Backward, &v3, &earlier).is_empty());
        let messages = check(Level::BackwardTransitive, &v3, &earlier);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("version 1"), "{messages:?}");
    }

    #[test]
    fn nothing_earlier_is_always_compatible() {
        let v1 = schema(r#"{"name":"a","type":"string"}"#);
        for level in levels() {
            assert!(check(level, &v1, &[]).is_empty());
        }
    }
}
