#![allow(dead_code, reason = "each test binary uses part of the shared samples")]

//! One sample of every message type the four services exchange, in its serde form.

use domain::{
    CancelReason, Currency, CustomerId, DeliveryEvent, DeliveryId, DeliveryRequest, InventoryEvent,
    InventoryRequest, Message, Money, OrderEvent, OrderId, OrderLine, OrderLines, OrderRequest,
    OrderStockEvent, PaymentEvent, PaymentId, PaymentRequest, Quantity, Sku, StockLine,
};
use serde_json::Value;
use testkit::TestDb;

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::new("EUR").unwrap()).unwrap()
}

fn sku(s: &str) -> Sku {
    Sku::new(s).unwrap()
}

fn qty(n: u32) -> Quantity {
    Quantity::new(n).unwrap()
}

fn push<E: Message>(out: &mut Vec<(String, Value)>, events: impl IntoIterator<Item = E>) {
    for event in events {
        out.push((
            event.event_type().to_owned(),
            serde_json::to_value(&event).unwrap(),
        ));
    }
}

/// `(event type, serde form)` for every event and command type, each at least once.
pub fn samples() -> Vec<(String, Value)> {
    let order_id = OrderId::new();
    let payment_id = PaymentId::new();
    let delivery_id = DeliveryId::new();
    let lines = OrderLines::new(vec![
        OrderLine {
            sku: sku("MUG-RED"),
            quantity: qty(2),
            unit_price: eur(1250),
        },
        OrderLine {
            sku: sku("TEA-1KG"),
            quantity: qty(1),
            unit_price: eur(1899),
        },
    ])
    .unwrap();
    let mut out = Vec::new();
    push(
        &mut out,
        [
            OrderEvent::Placed {
                order_id,
                customer_id: CustomerId::new(),
                total: lines.total(),
                lines: lines.clone(),
                idempotency_key: Some("checkout-7f3a".into()),
            },
            OrderEvent::Placed {
                order_id,
                customer_id: CustomerId::new(),
                total: lines.total(),
                lines,
                idempotency_key: None,
            },
            OrderEvent::Completed { order_id },
        ],
    );
    push(
        &mut out,
        CancelReason::ALL.map(|reason| OrderEvent::Cancelled { order_id, reason }),
    );
    push(
        &mut out,
        [
            PaymentEvent::Authorized {
                payment_id,
                order_id,
                amount: eur(4399),
                provider_ref: "psp-81".into(),
            },
            PaymentEvent::Declined {
                payment_id,
                order_id,
                amount: eur(4399),
                reason: "insufficient funds".into(),
            },
            PaymentEvent::Captured {
                payment_id,
                order_id,
                amount: eur(4399),
            },
            PaymentEvent::Voided {
                payment_id,
                order_id,
                amount: eur(4399),
            },
            PaymentEvent::Refunded {
                payment_id,
                order_id,
                amount: eur(1000),
                total_refunded: eur(1500),
                captured: eur(4399),
            },
        ],
    );
    push(
        &mut out,
        [
            InventoryEvent::Received {
                sku: sku("MUG-RED"),
                quantity: 4_000_000_000,
            },
            InventoryEvent::Reserved {
                sku: sku("MUG-RED"),
                order_id,
                quantity: qty(2),
            },
            InventoryEvent::Released {
                sku: sku("MUG-RED"),
                order_id,
                quantity: qty(2),
            },
            InventoryEvent::Committed {
                sku: sku("MUG-RED"),
                order_id,
                quantity: qty(10_000),
            },
        ],
    );
    push(
        &mut out,
        [
            DeliveryEvent::Scheduled {
                delivery_id,
                order_id,
            },
            DeliveryEvent::Dispatched {
                delivery_id,
                order_id,
            },
            DeliveryEvent::Completed {
                delivery_id,
                order_id,
            },
            DeliveryEvent::Failed {
                delivery_id,
                order_id,
                reason: "address unknown".into(),
            },
            DeliveryEvent::Cancelled {
                delivery_id,
                order_id,
            },
        ],
    );
    push(
        &mut out,
        [
            InventoryRequest::ReserveStock {
                order_id,
                lines: vec![StockLine {
                    sku: sku("MUG-RED"),
                    quantity: qty(2),
                }],
            },
            InventoryRequest::ReleaseStock { order_id },
            InventoryRequest::CommitStock { order_id },
        ],
    );
    push(
        &mut out,
        [
            PaymentRequest::AuthorizePayment {
                order_id,
                amount: eur(4399),
            },
            PaymentRequest::CapturePayment { order_id },
            PaymentRequest::VoidPayment { order_id },
            PaymentRequest::RefundPayment {
                order_id,
                amount: eur(4399),
            },
        ],
    );
    push(
        &mut out,
        [
            OrderRequest::CompleteOrder { order_id },
            OrderRequest::CancelOrder {
                order_id,
                reason: CancelReason::PaymentDeclined,
            },
        ],
    );
    push(
        &mut out,
        [
            DeliveryRequest::ScheduleDelivery { order_id },
            DeliveryRequest::CancelDelivery { order_id },
        ],
    );
    push(
        &mut out,
        [
            OrderStockEvent::OrderStockReserved { order_id },
            OrderStockEvent::OrderStockRejected {
                order_id,
                sku: sku("MUG-RED"),
                requested: qty(3),
                available: 1,
            },
            OrderStockEvent::OrderStockReleased { order_id },
            OrderStockEvent::OrderStockCommitted { order_id },
        ],
    );
    out
}

/// Deserializes the serde form back into its Rust type and serializes it again: a value that survives
/// this is exactly what the type can represent.
pub fn through_rust_type(event_type: &str, json: &Value) -> Value {
    fn again<E: Message>(json: &Value) -> Value {
        let event: E =
            serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{json}: {e}"));
        serde_json::to_value(event).unwrap()
    }
    let of = |types: &[&str]| types.contains(&event_type);
    if of(OrderEvent::EVENT_TYPES) {
        again::<OrderEvent>(json)
    } else if of(PaymentEvent::EVENT_TYPES) {
        again::<PaymentEvent>(json)
    } else if of(InventoryEvent::EVENT_TYPES) {
        again::<InventoryEvent>(json)
    } else if of(DeliveryEvent::EVENT_TYPES) {
        again::<DeliveryEvent>(json)
    } else if of(InventoryRequest::EVENT_TYPES) {
        again::<InventoryRequest>(json)
    } else if of(PaymentRequest::EVENT_TYPES) {
        again::<PaymentRequest>(json)
    } else if of(DeliveryRequest::EVENT_TYPES) {
        again::<DeliveryRequest>(json)
    } else if of(OrderRequest::EVENT_TYPES) {
        again::<OrderRequest>(json)
    } else if of(OrderStockEvent::EVENT_TYPES) {
        again::<OrderStockEvent>(json)
    } else {
        panic!("{event_type} is no message type of the domain")
    }
}

/// The Avro binary body of `value` under `schema`.
pub fn write_avro(schema: &apache_avro::Schema, value: apache_avro::types::Value) -> Vec<u8> {
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap()
}

/// Reads a body written with `writer`, resolved into `reader` when given.
pub fn read_avro(
    writer: &apache_avro::Schema,
    bytes: &[u8],
    reader: Option<&apache_avro::Schema>,
) -> apache_avro::types::Value {
    apache_avro::reader::datum::GenericDatumReader::builder(writer)
        .maybe_reader_schema(reader)
        .build()
        .unwrap()
        .read_value(&mut &bytes[..])
        .unwrap()
}

/// The registry server of `orderflow registry` on a fresh database and an ephemeral port, stopped on drop.
pub struct Registry {
    pub url: String,
    _server: schemas::registry::LocalRegistry,
    _db: TestDb,
}

impl Registry {
    pub async fn start() -> Self {
        let db = TestDb::new().await;
        let server = schemas::registry::LocalRegistry::start(db.pool().clone())
            .await
            .unwrap();
        Registry {
            url: server.url().to_owned(),
            _server: server,
            _db: db,
        }
    }
}
