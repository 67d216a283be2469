//! The Rust message types and their Avro schemas cannot drift apart: every event and command type has a
//! schema, every schema has a type, and each sample survives serde form → Avro binary → serde form → Rust
//! type unchanged. A field added to, removed from or retyped in either side fails here.

mod common;

use std::collections::BTreeSet;

use domain::{
    DeliveryEvent, DeliveryRequest, InventoryEvent, InventoryRequest, Message, OrderEvent,
    OrderRequest, OrderStockEvent, PaymentEvent, PaymentRequest,
};
use schemas::Catalog;
use schemas::codec::to_record_value;
use schemas::convert::avro_to_json;

#[test]
fn every_message_type_has_a_schema_and_every_schema_a_type() {
    let types: BTreeSet<&str> = [
        OrderEvent::EVENT_TYPES,
        PaymentEvent::EVENT_TYPES,
        InventoryEvent::EVENT_TYPES,
        DeliveryEvent::EVENT_TYPES,
        InventoryRequest::EVENT_TYPES,
        PaymentRequest::EVENT_TYPES,
        DeliveryRequest::EVENT_TYPES,
        OrderRequest::EVENT_TYPES,
        OrderStockEvent::EVENT_TYPES,
    ]
    .concat()
    .into_iter()
    .collect();
    let schemas: BTreeSet<&str> = Catalog::embedded()
        .unwrap()
        .iter()
        .map(|r| r.event_type)
        .collect();
    assert_eq!(schemas, types);
    let sampled: BTreeSet<String> = common::samples().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        sampled,
        types.iter().map(|t| (*t).to_owned()).collect(),
        "a type without a sample"
    );
}

#[test]
fn every_sample_round_trips_through_its_current_schema() {
    let catalog = Catalog::embedded().unwrap();
    for (event_type, json) in common::samples() {
        let record = catalog.get(&event_type).unwrap();
        let schema = &record.current().schema;
        let value = to_record_value(record, &json).unwrap_or_else(|e| panic!("{e}"));
        let bytes = common::write_avro(schema, value);
        let back = common::read_avro(schema, &bytes, None);
        let mut back = avro_to_json(&back).unwrap();
        back["type"] = event_type.clone().into();
        assert_eq!(back, json, "{event_type}");
        assert_eq!(
            common::through_rust_type(&event_type, &back),
            json,
            "{event_type}"
        );
    }
}

#[test]
fn a_field_the_schema_lacks_or_a_wrong_type_is_refused_with_its_path() {
    let catalog = Catalog::embedded().unwrap();
    let (_, placed) = common::samples()
        .into_iter()
        .find(|(t, _)| t == "OrderPlaced")
        .unwrap();
    let record = catalog.get("OrderPlaced").unwrap();

    let mut extra = placed.clone();
    extra["coupon"] = "SPRING".into();
    let err = to_record_value(record, &extra).unwrap_err().to_string();
    assert_eq!(
        err,
        r#"OrderPlaced does not match its schema orderflow.orders.OrderPlaced: field "coupon" is not in schema orderflow.orders.OrderPlaced"#
    );

    let mut retyped = placed.clone();
    retyped["lines"][1]["unit_price"]["minor"] = "18.99".into();
    let err = to_record_value(record, &retyped).unwrap_err().to_string();
    assert!(
        err.ends_with(r#"lines[1].unit_price.minor: expected a long (64 bits), found "18.99""#),
        "{err}"
    );

    let mut missing = placed;
    missing.as_object_mut().unwrap().remove("total");
    let err = to_record_value(record, &missing).unwrap_err().to_string();
    assert!(err.ends_with(r#"missing field "total""#), "{err}");
}
