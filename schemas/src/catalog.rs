//! The schemas this build carries: every published version of every record, embedded at compile time from
//! `schemas/avro/<service>/<RecordName>/v<N>.avsc`.
//!
//! The record name is the event type (`OrderPlaced`, `ReserveStock`, ...) and is unique across services;
//! the namespace is `orderflow.<service>`. The highest version of a record is the current one: writers
//! encode with it, readers resolve older versions into it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use apache_avro::Schema;

use crate::SchemaError;

/// One `.avsc` file as embedded by the build script.
#[derive(Clone, Copy, Debug)]
pub struct SchemaFile {
    /// The directory under `avro/`: `orders`, `payments`, `inventory` or `delivery`.
    pub service: &'static str,
    /// The record's short name, which is the event type.
    pub record: &'static str,
    /// The published version, from the file name `v<N>.avsc`.
    pub version: u32,
    /// The schema text.
    pub text: &'static str,
}

/// Every embedded schema file, sorted by path.
pub const FILES: &[SchemaFile] = include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

/// One published version of a record schema.
#[derive(Clone, Debug)]
pub struct SchemaVersion {
    pub version: u32,
    pub text: &'static str,
    pub schema: Schema,
}

/// All published versions of one record, oldest first.
#[derive(Clone, Debug)]
pub struct RecordSchemas {
    /// The event type, e.g. `OrderPlaced`.
    pub event_type: &'static str,
    /// The full Avro name, e.g. `orderflow.orders.OrderPlaced`: the record part of a
    /// `TopicRecordNameStrategy` subject.
    pub full_name: String,
    pub versions: Vec<SchemaVersion>,
}

impl RecordSchemas {
    /// The newest version, which writers use.
    #[must_use]
    pub fn current(&self) -> &SchemaVersion {
        self.versions
            .last()
            .expect("a record has at least one version")
    }
}

/// The parsed schemas of every record, by event type.
#[derive(Clone, Debug)]
pub struct Catalog {
    records: BTreeMap<&'static str, RecordSchemas>,
}

impl Catalog {
    /// The embedded catalog, parsed and checked once per process.
    ///
    /// # Errors
    /// [`SchemaError::Catalog`] when an embedded file does not parse or does not follow the layout; a
    /// build that passed its tests never returns it.
    pub fn embedded() -> Result<&'static Self, SchemaError> {
        static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
        CATALOG
            .get_or_init(|| Self::from_files(FILES).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|problem| SchemaError::Catalog(problem.clone()))
    }

    /// Parses and checks `files`: each parses as a record named after its directory, in namespace
    /// `orderflow.<service>`, versions numbered 1, 2, ... without gaps, and no record name twice.
    ///
    /// # Errors
    /// [`SchemaError::Catalog`] naming the file and the problem.
    pub fn from_files(files: &[SchemaFile]) -> Result<Self, SchemaError> {
        let mut records: BTreeMap<&'static str, RecordSchemas> = BTreeMap::new();
        let mut sorted = files.to_vec();
        sorted.sort_by_key(|f| (f.record, f.version));
        for file in sorted {
            let path = format!(
                "avro/{}/{}/v{}.avsc",
                file.service, file.record, file.version
            );
            let problem = |what: String| SchemaError::Catalog(format!("{path}: {what}"));
            let schema = Schema::parse_str(file.text)
                .map_err(|e| problem(format!("not a valid Avro schema: {e}")))?;
            let Schema::Record(record) = &schema else {
                return Err(problem("the top-level schema must be a record".into()));
            };
            let full_name = record.name.fullname(None);
            let expected = format!("orderflow.{}.{}", file.service, file.record);
            if full_name != expected {
                return Err(problem(format!(
                    "the record is named {full_name}, expected {expected}"
                )));
            }
            let entry = records.entry(file.record).or_insert_with(|| RecordSchemas {
                event_type: file.record,
                full_name: full_name.clone(),
                versions: Vec::new(),
            });
            if entry.full_name != full_name {
                return Err(problem(format!(
                    "{} already exists as {}",
                    file.record, entry.full_name
                )));
            }
            let next = u32::try_from(entry.versions.len()).expect("few versions") + 1;
            if file.version != next {
                return Err(problem(format!(
                    "version {} follows version {}",
                    file.version,
                    next - 1
                )));
            }
            entry.versions.push(SchemaVersion {
                version: file.version,
                text: file.text,
                schema,
            });
        }
        Ok(Self { records })
    }

    /// The schemas of `event_type`.
    ///
    /// # Errors
    /// [`SchemaError::UnknownEventType`] when this build has no schema for it.
    pub fn get(&self, event_type: &str) -> Result<&RecordSchemas, SchemaError> {
        self.records
            .get(event_type)
            .ok_or_else(|| SchemaError::UnknownEventType(event_type.to_owned()))
    }

    /// The schemas of the record with full Avro name `full_name`, e.g. `orderflow.orders.OrderPlaced`.
    #[must_use]
    pub fn by_full_name(&self, full_name: &str) -> Option<&RecordSchemas> {
        let (_, short) = full_name.rsplit_once('.')?;
        self.records.get(short).filter(|r| r.full_name == full_name)
    }

    /// Every record, by event type.
    pub fn iter(&self) -> impl Iterator<Item = &RecordSchemas> {
        self.records.values()
    }
}
