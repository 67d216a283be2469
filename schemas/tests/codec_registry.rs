//! The codec against the real registry (`orderflow registry`'s server on Postgres): every event and
//! command round-trips through encode and decode, schema ids are registered once per subject, a record
//! written by an older producer with version 1 decodes into today's type, and bad input is refused with
//! an error that names it.

mod common;

use schema_registry_converter::async_impl::avro::AvroEncoder;
use schema_registry_converter::async_impl::schema_registry::{SrSettings, get_all_subjects};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use schemas::convert::json_to_avro;
use schemas::{AvroCodec, Catalog, SchemaError};

#[tokio::test]
async fn every_event_and_command_round_trips_through_the_registry() {
    let registry = common::Registry::start().await;
    let codec = AvroCodec::new(&registry.url).unwrap();
    let samples = common::samples();
    let mut ids = std::collections::BTreeMap::new();
    for (event_type, json) in &samples {
        let topic = "orders.events";
        let (bytes, schema_id) = codec.encode(topic, event_type, json).await.unwrap();
        assert_eq!(bytes[0], 0, "magic byte");
        assert_eq!(
            u32::from_be_bytes(bytes[1..5].try_into().unwrap()),
            schema_id
        );
        let decoded = codec.decode(&bytes).await.unwrap();
        assert_eq!(&decoded.event_type, event_type);
        assert_eq!(decoded.schema_id, schema_id);
        assert_eq!(&decoded.event, json, "{event_type}");
        assert_eq!(&common::through_rust_type(event_type, &decoded.event), json);
        let previous = ids.insert(event_type.clone(), schema_id);
        assert!(
            previous.is_none_or(|p| p == schema_id),
            "{event_type}: one id per schema"
        );
    }
    let settings = SrSettings::new(registry.url.clone());
    let mut subjects = get_all_subjects(&settings).await.unwrap();
    subjects.sort();
    let mut expected: Vec<String> = Catalog::embedded()
        .unwrap()
        .iter()
        .map(|r| format!("orders.events-{}", r.full_name))
        .collect();
    expected.sort();
    assert_eq!(subjects, expected, "TopicRecordNameStrategy subjects");
    let distinct: std::collections::BTreeSet<_> = ids.values().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "each record type has its own schema id"
    );
}

#[tokio::test]
async fn a_record_written_with_version_1_decodes_into_todays_type() {
    let registry = common::Registry::start().await;
    let record = Catalog::embedded().unwrap().get("OrderPlaced").unwrap();
    assert!(record.versions.len() > 1, "OrderPlaced has evolved");
    let (_, mut placed) = common::samples()
        .into_iter()
        .find(|(t, _)| t == "OrderPlaced")
        .unwrap();
    placed.as_object_mut().unwrap().remove("type");
    placed.as_object_mut().unwrap().remove("idempotency_key");

    // An old producer, with only version 1.
    let v1 = &record.versions[0];
    let old = AvroEncoder::new(SrSettings::new(registry.url.clone()));
    let value = json_to_avro(&placed, &v1.schema).unwrap();
    let apache_avro::types::Value::Record(fields) = value else {
        unreachable!()
    };
    let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
        "orders.events".into(),
        SuppliedSchema::new(
            Some(record.full_name.clone()),
            SchemaType::Avro,
            v1.text.to_owned(),
        ),
    );
    let bytes = old
        .encode(
            fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect(),
            strategy,
        )
        .await
        .unwrap();

    let codec = AvroCodec::new(&registry.url).unwrap();
    let event: domain::OrderEvent = codec.decode_as(&bytes).await.unwrap();
    let domain::OrderEvent::Placed {
        idempotency_key,
        lines,
        ..
    } = event
    else {
        panic!("not OrderPlaced: {event:?}")
    };
    assert_eq!(idempotency_key, None);
    assert_eq!(lines.as_slice().len(), 2);

    // Today's producer registers version 2 under the same subject: compatible, so accepted.
    let (_, today) = common::samples()
        .into_iter()
        .find(|(t, _)| t == "OrderPlaced")
        .unwrap();
    let (_, v2_id) = codec
        .encode("orders.events", "OrderPlaced", &today)
        .await
        .unwrap();
    assert_ne!(v2_id, schemas::codec::schema_id(&bytes).unwrap());
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_error() {
    let registry = common::Registry::start().await;
    let codec = AvroCodec::new(&registry.url).unwrap();

    let err = codec
        .encode("orders.events", "OrderShipped", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, SchemaError::UnknownEventType(_)), "{err}");
    assert_eq!(
        err.to_string(),
        r#"no schema for event type "OrderShipped" in this build"#
    );

    let (_, mut completed) = common::samples()
        .into_iter()
        .find(|(t, _)| t == "OrderCompleted")
        .unwrap();
    completed["order_id"] = "not-a-uuid".into();
    let err = codec
        .encode("orders.events", "OrderCompleted", &completed)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"OrderCompleted does not match its schema orderflow.orders.OrderCompleted: order_id: expected a UUID, found "not-a-uuid""#
    );

    let err = codec
        .decode(br#"{"type":"OrderCompleted"}"#)
        .await
        .unwrap_err();
    assert!(matches!(err, SchemaError::Decode(_)), "{err}");
    assert!(
        err.to_string().contains("not in the Confluent wire format"),
        "{err}"
    );

    let err = codec.decode(&[0, 0, 0, 0x7f, 0x7f, 2]).await.unwrap_err();
    assert!(
        matches!(err, SchemaError::Decode(_)),
        "an unknown schema id: {err}"
    );
}

/// A reader that started before its registry, then saw it fail, decodes once the registry answers: no
/// failed look-up is kept for the life of the process.
#[tokio::test]
async fn a_reader_started_before_its_registry_decodes_once_the_registry_answers() {
    let db = testkit::TestDb::new().await;
    let writer_registry = schemas::registry::LocalRegistry::start(db.pool().clone())
        .await
        .unwrap();
    let writer = AvroCodec::new(writer_registry.url()).unwrap();
    let (event_type, json) = common::samples().remove(0);
    let (bytes, _) = writer
        .encode("orders.events", &event_type, &json)
        .await
        .unwrap();

    // The reader's registry (the same schemas, another address) is not listening yet.
    let address = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let reader = AvroCodec::new(&format!("http://{address}")).unwrap();
    let early = reader.decode(&bytes).await;
    assert!(
        matches!(
            early,
            Err(SchemaError::Registry {
                retriable: true,
                ..
            })
        ),
        "no registry yet: a retriable registry error, which the consumer retries: {early:?}"
    );

    // Then something answers there, but fails: a registry whose database is down answers 500.
    let failing = {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let app = axum::Router::new().fallback(|| async {
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error_code":50001,"message":"database down"}"#,
            )
        });
        tokio::spawn(async move { axum::serve(listener, app).await })
    };
    let failed = reader.decode(&bytes).await;
    failing.abort();
    let _ = failing.await;
    assert!(
        matches!(
            failed,
            Err(SchemaError::Registry {
                retriable: true,
                ..
            })
        ),
        "a registry that fails (500) is retried, not taken for a bad record: {failed:?}"
    );

    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(schemas::registry::serve(
        listener,
        db.pool().clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let decoded = reader.decode(&bytes).await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert_eq!(
        decoded
            .expect("decodes once the registry answers: no failure was kept")
            .event,
        json
    );
}
