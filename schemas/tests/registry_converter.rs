//! The registry driven by `schema_registry_converter`, the client the services use: register, fetch by id,
//! and an Avro encode/decode round trip in the Confluent wire format with `TopicRecordNameStrategy`.

use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, get_schema_by_subject_and_version, post_schema,
};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use testkit::TestDb;

const PLACED: &str = r#"{"type":"record","name":"OrderPlaced","namespace":"orderflow.orders","fields":[
    {"name":"order_id","type":"string"},
    {"name":"amount_cents","type":"long"},
    {"name":"note","type":["null","string"],"default":null}
]}"#;

async fn start() -> (TestDb, SrSettings) {
    let db = TestDb::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(schemas::registry::serve(
        listener,
        db.pool().clone(),
        std::future::pending(),
    ));
    let settings = SrSettings::new_builder(url).no_proxy().build().unwrap();
    (db, settings)
}

fn supplied() -> SuppliedSchema {
    SuppliedSchema::new(
        Some("orderflow.orders.OrderPlaced".to_owned()),
        SchemaType::Avro,
        PLACED.to_owned(),
    )
}

#[tokio::test]
async fn register_and_fetch_by_id_through_the_converter() {
    let (_db, settings) = start().await;
    let registered = post_schema(&settings, "orders.events-value".to_owned(), supplied())
        .await
        .unwrap();
    let again = post_schema(&settings, "orders.events-value".to_owned(), supplied())
        .await
        .unwrap();
    assert_eq!(registered.id, again.id);

    let fetched = get_schema_by_id(registered.id, &settings).await.unwrap();
    assert_eq!(fetched.id, registered.id);
    assert_eq!(fetched.schema_type, SchemaType::Avro);
    assert_eq!(fetched.schema, PLACED);

    let latest = get_schema_by_subject_and_version(&settings, "orders.events-value", None)
        .await
        .unwrap();
    assert_eq!(latest.id, registered.id);
    assert_eq!(latest.version, Some(1));

    let missing = get_schema_by_id(registered.id + 1000, &settings)
        .await
        .unwrap_err();
    assert!(!missing.retriable, "{missing:?}");
    assert!(
        format!("{missing:?}").contains("40403"),
        "the registry's error code reaches the client: {missing:?}"
    );
}

#[tokio::test]
async fn avro_round_trip_in_the_wire_format_with_topic_record_name_strategy() {
    let (_db, settings) = start().await;
    let encoder = AvroEncoder::new(settings.clone());
    let decoder = AvroDecoder::new(settings.clone());
    let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
        "orders.events".to_owned(),
        supplied(),
    );
    let fields = vec![
        ("order_id", Value::String("o-1".to_owned())),
        ("amount_cents", Value::Long(4200)),
        (
            "note",
            Value::Union(1, Box::new(Value::String("gift".to_owned()))),
        ),
    ];
    let bytes = encoder.encode(fields, strategy).await.unwrap();

    // Magic byte 0, then the id the registry gave under the TopicRecordNameStrategy subject.
    let registered = get_schema_by_subject_and_version(
        &settings,
        "orders.events-orderflow.orders.OrderPlaced",
        None,
    )
    .await
    .unwrap();
    assert_eq!(bytes[0], 0);
    assert_eq!(
        u32::from_be_bytes(bytes[1..5].try_into().unwrap()),
        registered.id
    );

    let decoded = decoder.decode(Some(&bytes)).await.unwrap();
    assert_eq!(
        decoded.value,
        Value::Record(vec![
            ("order_id".to_owned(), Value::String("o-1".to_owned())),
            ("amount_cents".to_owned(), Value::Long(4200)),
            (
                "note".to_owned(),
                Value::Union(1, Box::new(Value::String("gift".to_owned())))
            ),
        ])
    );
    assert_eq!(
        decoded.name.map(|n| n.fullname(None)),
        Some("orderflow.orders.OrderPlaced".to_owned())
    );
}
