//! The Avro codec in the outbox: events are encoded inside the writing transaction, the record carries
//! its schema id, and an event that does not match its schema is refused there, leaving nothing written.

mod common;

use domain::{
    Aggregate, CustomerId, DomainError, DomainEvent, Message, OrderCommand, OrderEvent, OrderId,
    OrderLines, OrderState,
};
use outbox::{EventStore, Metadata, OutboxError};
use producers::headers;
use producers::topics::Topics;
use schemas::AvroCodec;
use serde::{Deserialize, Serialize};

#[tokio::test]
async fn the_outbox_record_is_avro_with_its_schema_id() {
    let registry = common::Registry::start().await;
    let db = testkit::TestDb::new().await;
    let codec = AvroCodec::new(&registry.url).unwrap();
    let store = EventStore::new(db.pool().clone(), codec, Topics::default(), "eu-west");
    let order_id = OrderId::new();
    let (_, placed) = common::samples()
        .into_iter()
        .find(|(t, _)| t == "OrderPlaced")
        .unwrap();
    let lines: OrderLines = serde_json::from_value(placed["lines"].clone()).unwrap();
    let place = OrderCommand::Place {
        order_id,
        customer_id: CustomerId::new(),
        lines,
        idempotency_key: Some("checkout-1".into()),
    };
    let executed = store
        .execute::<OrderState>(
            &order_id.to_string(),
            place,
            &Metadata::new(order_id.into()),
        )
        .await
        .unwrap()
        .unwrap();

    let (payload, record_headers): (Vec<u8>, serde_json::Value) =
        sqlx::query_as("SELECT payload, headers FROM outbox WHERE key = $1")
            .bind(order_id.to_string())
            .fetch_one(db.pool())
            .await
            .unwrap();
    let schema_id = schemas::codec::schema_id(&payload).unwrap();
    assert_eq!(record_headers[headers::SCHEMA_ID], schema_id.to_string());
    assert_eq!(record_headers[headers::EVENT_TYPE], "OrderPlaced");
    let reader = AvroCodec::new(&registry.url).unwrap();
    let decoded: OrderEvent = reader.decode_as(&payload).await.unwrap();
    assert_eq!(decoded, executed.events[0]);
}

/// An event type whose Rust shape drifted from its schema: `OrderCompleted` with a field the schema
/// does not have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Drifted {
    OrderCompleted { order_id: OrderId, gift_wrap: bool },
}

impl Message for Drifted {
    const EVENT_TYPES: &'static [&'static str] = &["OrderCompleted"];

    fn event_type(&self) -> &'static str {
        "OrderCompleted"
    }
}

impl DomainEvent for Drifted {
    fn aggregate_id(&self) -> String {
        let Self::OrderCompleted { order_id, .. } = self;
        order_id.to_string()
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
struct DriftedOrder;

impl Aggregate for DriftedOrder {
    type Command = ();
    type Event = Drifted;

    const SERVICE: domain::Service = domain::Service::Orders;

    fn decide(&self, (): ()) -> Result<Vec<Drifted>, DomainError> {
        Ok(Vec::new())
    }

    fn evolve(self, _: &Drifted) -> Self {
        self
    }

    fn is_terminal(&self) -> bool {
        false
    }

    fn state_name(&self) -> &'static str {
        "Drifted"
    }
}

#[tokio::test]
async fn an_event_that_does_not_match_its_schema_is_refused_in_the_writing_transaction() {
    let registry = common::Registry::start().await;
    let db = testkit::TestDb::new().await;
    let store = EventStore::new(
        db.pool().clone(),
        AvroCodec::new(&registry.url).unwrap(),
        Topics::default(),
        "eu",
    );
    let order_id = OrderId::new();
    let event = Drifted::OrderCompleted {
        order_id,
        gift_wrap: true,
    };

    let mut tx = db.pool().begin().await.unwrap();
    let err = store
        .append::<DriftedOrder>(
            &mut tx,
            &order_id.to_string(),
            0,
            &[event],
            &Metadata::new(order_id.into()),
        )
        .await
        .unwrap_err();
    drop(tx);

    assert!(matches!(err, OutboxError::Codec { .. }), "{err:?}");
    let chain = producers::error_chain(&err);
    assert!(
        chain.contains(r#"OrderCompleted does not match its schema orderflow.orders.OrderCompleted: field "gift_wrap" is not in schema"#),
        "{chain}"
    );
    for count in ["SELECT count(*) FROM events", "SELECT count(*) FROM outbox"] {
        let rows: i64 = sqlx::query_scalar(count)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(rows, 0, "{count}");
    }
}

#[tokio::test]
async fn saga_messages_are_published_keyed_by_order_with_their_schema_id() {
    let registry = common::Registry::start().await;
    let db = testkit::TestDb::new().await;
    let store = EventStore::new(
        db.pool().clone(),
        AvroCodec::new(&registry.url).unwrap(),
        Topics::default(),
        "eu",
    );
    let order_id = OrderId::new();
    let requests = [
        domain::InventoryRequest::ReleaseStock { order_id },
        domain::InventoryRequest::CommitStock { order_id },
    ];
    let mut tx = db.pool().begin().await.unwrap();
    let ids = store
        .publish(
            &mut tx,
            "inventory.commands",
            &order_id.to_string(),
            &requests,
            &Metadata::new(order_id.into()),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let rows: Vec<(String, String, Vec<u8>, serde_json::Value)> =
        sqlx::query_as("SELECT topic, key, payload, headers FROM outbox ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    let reader = AvroCodec::new(&registry.url).unwrap();
    for ((topic, key, payload, record_headers), (request, id)) in
        rows.into_iter().zip(requests.iter().zip(ids))
    {
        assert_eq!(
            (topic.as_str(), key),
            ("inventory.commands", order_id.to_string())
        );
        assert_eq!(record_headers[headers::EVENT_ID], id.to_string());
        assert_eq!(
            record_headers[headers::SCHEMA_ID],
            schemas::codec::schema_id(&payload).unwrap().to_string()
        );
        let decoded: domain::InventoryRequest = reader.decode_as(&payload).await.unwrap();
        assert_eq!(&decoded, request);
    }
}
