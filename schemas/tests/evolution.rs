//! Schema evolution: every published version stays in the repository, and the current version of each
//! record must read data written with every earlier one (`BACKWARD_TRANSITIVE`), as decided by
//! apache-avro's compatibility checker. Bytes written with version 1 decode into today's Rust type.

mod common;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use schemas::Catalog;
use schemas::catalog::{FILES, SchemaFile};
use schemas::convert::{avro_to_json, json_to_avro};
use serde_json::Value;

#[test]
fn current_schemas_are_backward_transitive_compatible() {
    let mut evolved = 0;
    for record in Catalog::embedded().unwrap().iter() {
        let current = record.current();
        for old in &record.versions[..record.versions.len() - 1] {
            if let Err(e) = SchemaCompatibility::can_read(&old.schema, &current.schema) {
                panic!(
                    "{} v{} cannot read data written with v{}: {e}",
                    record.full_name, current.version, old.version
                );
            }
            evolved += 1;
        }
    }
    assert!(
        evolved > 0,
        "no record has an earlier version: this check checks nothing"
    );
}

#[test]
fn the_check_catches_an_incompatible_change() {
    let old = Schema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#,
    )
    .unwrap();
    let new_field_without_default = Schema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"string"}]}"#,
    )
    .unwrap();
    assert!(SchemaCompatibility::can_read(&old, &new_field_without_default).is_err());
}

/// Keeps the fields `schema` knows, as an old producer would have written the record.
fn as_written_by(json: &Value, schema: &Schema) -> Value {
    let Schema::Record(record) = schema else {
        panic!("records only")
    };
    let mut old = json.clone();
    old.as_object_mut()
        .unwrap()
        .retain(|k, _| record.lookup.contains_key(k));
    old
}

#[test]
fn bytes_written_with_version_1_decode_into_todays_type() {
    let catalog = Catalog::embedded().unwrap();
    for (event_type, json) in common::samples() {
        let record = catalog.get(&event_type).unwrap();
        let v1 = &record.versions[0].schema;
        let old_json = as_written_by(&json, v1);
        let bytes = common::write_avro(v1, json_to_avro(&old_json, v1).unwrap());
        let value = common::read_avro(v1, &bytes, Some(&record.current().schema));
        let mut today = avro_to_json(&value).unwrap();
        today["type"] = event_type.clone().into();
        let typed = common::through_rust_type(&event_type, &today);
        assert_eq!(as_written_by(&typed, v1), old_json, "{event_type}");
        if event_type == "OrderPlaced" {
            assert_eq!(
                typed["idempotency_key"],
                Value::Null,
                "v1 has no key: the v2 default applies"
            );
        }
    }
}

#[test]
fn the_catalog_refuses_gaps_misnamed_records_and_bad_avro() {
    let record = |name: &str| {
        format!(r#"{{"type":"record","name":"{name}","namespace":"orderflow.orders","fields":[]}}"#)
    };
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let file = |record_name: &'static str, version, text: &'static str| SchemaFile {
        service: "orders",
        record: record_name,
        version,
        text,
    };
    let ok = leak(record("A"));
    let cases = [
        (
            vec![file("A", 1, ok), file("A", 3, ok)],
            "avro/orders/A/v3.avsc: version 3 follows version 1",
        ),
        (
            vec![file("B", 1, ok)],
            "avro/orders/B/v1.avsc: the record is named orderflow.orders.A, expected orderflow.orders.B",
        ),
        (
            vec![file("A", 1, "{")],
            "avro/orders/A/v1.avsc: not a valid Avro schema",
        ),
        (
            vec![file("A", 1, r#""string""#)],
            "avro/orders/A/v1.avsc: the top-level schema must be a record",
        ),
    ];
    for (files, problem) in cases {
        let err = Catalog::from_files(&files).unwrap_err().to_string();
        assert!(err.contains(problem), "{err}");
    }
    assert!(Catalog::from_files(FILES).is_ok());
}
