//! The orders service: place an order (a library call, idempotent on the client's key), complete or cancel
//! it (requests on `orders.commands`), and the read model `orders_view`.
//!
//! The order is event-sourced (`domain::OrderState`, stream id = order id); `orders_view` is updated in the
//! transaction that appends the events, so it is never behind the stream.

use chrono::{DateTime, Utc};
use domain::{
    Aggregate as _, CustomerId, Money, OrderCommand, OrderEvent, OrderId, OrderLine, OrderLines,
    OrderRequest, OrderState, Quantity, Service, Sku,
};
use outbox::{Codec, EventStore, Loaded, Metadata};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::shell::{Decision, Responder, Shell};
use crate::{Context, ServiceError};

pub mod global;
mod respond;

pub use respond::{Response, respond};

/// Longest accepted idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// A client's order, as submitted; [`place_order`] validates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceOrder {
    /// The client's key for this submission: submitting the same order again with the same key returns
    /// the order it placed; the key with another order (customer, lines or address) is refused
    /// ([`ServiceError::KeyReused`]).
    pub idempotency_key: Option<String>,
    /// Who orders.
    pub customer_id: CustomerId,
    /// What is ordered.
    pub lines: Vec<LineInput>,
    /// Where it goes; kept with the order in `orders_view` (the HTTP API requires one).
    pub delivery_address: Option<DeliveryAddress>,
}

/// Where an order is delivered, as submitted; [`validate_address`] checks it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryAddress {
    pub name: String,
    pub street: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `"DE"`.
    pub country: String,
}

/// Longest accepted address field (name, street, city), in characters; a postal code is at most
/// [`MAX_POSTAL_CODE_LEN`].
pub const MAX_ADDRESS_FIELD_LEN: usize = 200;

/// Longest accepted postal code, in characters.
pub const MAX_POSTAL_CODE_LEN: usize = 20;

/// One field of a submission that is not valid: where (`lines[1].quantity`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: impl ToString) -> Self {
        Self {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<FieldError> for ServiceError {
    fn from(error: FieldError) -> Self {
        ServiceError::invalid(error.field, error.reason)
    }
}

/// One line as submitted: raw values, validated by [`place_order`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInput {
    pub sku: String,
    pub quantity: u32,
    /// Unit price in minor units of `currency` (cents for EUR).
    pub unit_price_minor: i64,
    /// ISO 4217 code, e.g. `"EUR"`.
    pub currency: String,
}

impl LineInput {
    /// A line of `quantity` × `sku` at `unit_price_minor` minor units of `currency`.
    pub fn new(
        sku: impl Into<String>,
        quantity: u32,
        unit_price_minor: i64,
        currency: impl Into<String>,
    ) -> Self {
        Self {
            sku: sku.into(),
            quantity,
            unit_price_minor,
            currency: currency.into(),
        }
    }
}

/// The answer to [`place_order`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The order's id; for a repeated submission, the id of the order the first one made.
    pub order_id: OrderId,
    /// Whether this submission repeated an earlier one (nothing was written).
    pub duplicate: bool,
}

/// Validates `order`, and places it unless its idempotency key was used before.
///
/// In one transaction: claims the key in `order_submissions` (`ON CONFLICT DO NOTHING`; a concurrent
/// submission with the same key waits for this one and then finds its order), appends `OrderPlaced` (with
/// the key) to the order's stream with its outbox record, and inserts the `orders_view` row.
///
/// # Errors
/// [`ServiceError::Invalid`] naming the line and field for bad input; database and outbox errors.
#[tracing::instrument(skip_all, fields(customer_id = %order.customer_id), err)]
pub async fn place_order<C: Codec>(
    store: &EventStore<C>,
    order: PlaceOrder,
) -> Result<Placed, ServiceError> {
    let lines = validate(&order).map_err(invalid_fields)?;
    let key = match order.idempotency_key.clone() {
        Some(key) => Some(validate_key(key)?),
        None => None,
    };
    let address = order
        .delivery_address
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| ServiceError::invalid("delivery_address", e))?;
    let order_id = OrderId::new();
    let mut tx = store.pool().begin().await?;
    if let Some(key) = &key {
        let claimed = sqlx::query(
            "INSERT INTO order_submissions (idempotency_key, order_id, request_fingerprint)
             VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(order_id.as_uuid())
        .bind(fingerprint(&order))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            // The conflicting submission committed, so its row is there to read.
            let order_id = earlier_submission(&mut *tx, key, &order)
                .await?
                .ok_or(ServiceError::Database(sqlx::Error::RowNotFound))?;
            metrics::counter!("orders_duplicate_submissions_total").increment(1);
            tracing::info!(%order_id, "duplicate submission; returning the first order");
            return Ok(Placed {
                order_id,
                duplicate: true,
            });
        }
    }
    let events = OrderState::default().decide(OrderCommand::Place {
        order_id,
        customer_id: order.customer_id,
        lines,
        idempotency_key: key,
    })?;
    let id = order_id.to_string();
    store
        .append::<OrderState>(&mut tx, &id, 0, &events, &Metadata::new(order_id.as_uuid()))
        .await?;
    let total = match events.first() {
        Some(OrderEvent::Placed { total, .. }) => *total,
        _ => {
            return Err(ServiceError::NotApplicable(
                "Place made no OrderPlaced".into(),
            ));
        }
    };
    sqlx::query(
        "INSERT INTO orders_view (order_id, customer_id, status, total_minor, currency, delivery_address)
         VALUES ($1, $2, 'placed', $3, $4, $5)",
    )
    .bind(order_id.as_uuid())
    .bind(order.customer_id.as_uuid())
    .bind(total.minor())
    .bind(total.currency().code())
    .bind(address)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("orders_placed_total").increment(1);
    Ok(Placed {
        order_id,
        duplicate: false,
    })
}

/// [`ServiceError::Invalid`] naming the first field at fault, its reason followed by the others'.
fn invalid_fields(errors: Vec<FieldError>) -> ServiceError {
    let mut errors = errors.into_iter();
    let Some(first) = errors.next() else {
        return ServiceError::invalid("lines", "not valid");
    };
    let mut reason = first.reason;
    for other in errors {
        reason.push_str(&format!("; also {}: {}", other.field, other.reason));
    }
    ServiceError::invalid(first.field, reason)
}

/// What `order` asks for, as a SHA-256 of its customer, lines and address (not its key).
fn fingerprint(order: &PlaceOrder) -> String {
    use sha2::Digest as _;
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| (&l.sku, l.quantity, l.unit_price_minor, &l.currency))
        .collect();
    let asked = serde_json::json!({
        "customer_id": order.customer_id.as_uuid(),
        "lines": lines,
        "delivery_address": order.delivery_address,
    });
    let digest = sha2::Sha256::digest(asked.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The order an earlier submission with `idempotency_key` placed, if one did.
///
/// # Errors
/// [`ServiceError::KeyReused`] when that submission asked for another order than `order`; database errors.
pub async fn earlier_submission<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    idempotency_key: &str,
    order: &PlaceOrder,
) -> Result<Option<OrderId>, ServiceError> {
    let found: Option<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT order_id, request_fingerprint FROM order_submissions WHERE idempotency_key = $1",
    )
    .bind(idempotency_key)
    .fetch_optional(executor)
    .await?;
    let Some((order_id, asked)) = found else {
        return Ok(None);
    };
    if asked.is_some_and(|asked| asked != fingerprint(order)) {
        return Err(ServiceError::KeyReused {
            key: idempotency_key.to_owned(),
        });
    }
    OrderId::from_uuid(order_id)
        .map(Some)
        .map_err(|e| ServiceError::invalid("stored order id", e))
}

/// Checks a client's idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] characters, not blank, no control
/// characters.
///
/// # Errors
/// The problem, as a [`FieldError`] of `idempotency_key`.
pub fn validate_key(key: String) -> Result<String, FieldError> {
    let field = "idempotency_key";
    if key.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty or blank"));
    }
    let len = key.chars().count();
    if len > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(FieldError::new(
            field,
            format!("{len} characters; at most {MAX_IDEMPOTENCY_KEY_LEN}"),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(key)
}

/// Checks line `n` of an order: every field of it that is not valid, named `lines[n].<field>`.
///
/// # Errors
/// Each bad field, in the order sku, quantity, currency, unit price.
pub fn validate_line(n: usize, line: &LineInput) -> Result<OrderLine, Vec<FieldError>> {
    let field = |name: &str| format!("lines[{n}].{name}");
    let mut errors = Vec::new();
    let sku = Sku::new(line.sku.clone())
        .map_err(|e| errors.push(FieldError::new(field("sku"), e)))
        .ok();
    let quantity = Quantity::new(line.quantity)
        .map_err(|e| errors.push(FieldError::new(field("quantity"), e)))
        .ok();
    let currency = domain::Currency::new(&line.currency)
        .map_err(|e| errors.push(FieldError::new(field("currency"), e)))
        .ok();
    let unit_price =
        currency.and_then(
            |currency| match Money::new(line.unit_price_minor, currency) {
                Ok(price) if price.is_zero() => {
                    errors.push(FieldError::new(
                        field("unit_price_minor"),
                        "must be above zero",
                    ));
                    None
                }
                Ok(price) => Some(price),
                Err(e) => {
                    errors.push(FieldError::new(field("unit_price_minor"), e));
                    None
                }
            },
        );
    match (sku, quantity, unit_price) {
        (Some(sku), Some(quantity), Some(unit_price)) if errors.is_empty() => Ok(OrderLine {
            sku,
            quantity,
            unit_price,
        }),
        _ => Err(errors),
    }
}

/// Checks a delivery address: name, street and city 1 to [`MAX_ADDRESS_FIELD_LEN`] characters, a postal
/// code 1 to [`MAX_POSTAL_CODE_LEN`], none blank or with control characters; the country two capital
/// letters.
///
/// # Errors
/// Each bad field, named `delivery_address.<field>`.
pub fn validate_address(address: &DeliveryAddress) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let fields = [
        ("name", &address.name, MAX_ADDRESS_FIELD_LEN),
        ("street", &address.street, MAX_ADDRESS_FIELD_LEN),
        ("city", &address.city, MAX_ADDRESS_FIELD_LEN),
        ("postal_code", &address.postal_code, MAX_POSTAL_CODE_LEN),
    ];
    for (name, value, max) in fields {
        let field = format!("delivery_address.{name}");
        let len = value.chars().count();
        if value.trim().is_empty() {
            errors.push(FieldError::new(field, "must not be empty or blank"));
        } else if len > max {
            errors.push(FieldError::new(
                field,
                format!("{len} characters; at most {max}"),
            ));
        } else if value.chars().any(char::is_control) {
            errors.push(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
    }
    let country = &address.country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(FieldError::new(
            "delivery_address.country",
            format!("{country:?} is not a country code; two capital letters, e.g. DE"),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Checks a whole submission but its key ([`validate_key`]): every line, the address when there is one, and
/// what only the lines together can say (how many, one currency).
///
/// # Errors
/// Every field at fault.
pub fn validate(order: &PlaceOrder) -> Result<OrderLines, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut valid = Vec::with_capacity(order.lines.len());
    for (n, line) in order.lines.iter().enumerate() {
        match validate_line(n, line) {
            Ok(line) => valid.push(line),
            Err(line_errors) => errors.extend(line_errors),
        }
    }
    if let Some(Err(address_errors)) = order.delivery_address.as_ref().map(validate_address) {
        errors.extend(address_errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    OrderLines::new(valid).map_err(|e| vec![FieldError::new("lines", e)])
}

/// A row of the read model.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderView {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// `placed`, `completed` or `cancelled`.
    pub status: String,
    /// The `CancelReason` name of a cancelled order.
    pub cancel_reason: Option<String>,
    pub total_minor: i64,
    pub currency: String,
    pub placed_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The [`DeliveryAddress`] as JSON, when the order has one.
    pub delivery_address: Option<serde_json::Value>,
}

/// The read model's row of `order_id`, if the order exists.
pub async fn get_order(
    pool: &PgPool,
    order_id: OrderId,
) -> Result<Option<OrderView>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT order_id, customer_id, status, cancel_reason, total_minor, currency, placed_at, ended_at,
                delivery_address
         FROM orders_view WHERE order_id = $1",
    )
    .bind(order_id.as_uuid())
    .fetch_optional(pool)
    .await?)
}

/// How many orders are in each status, e.g. `[("cancelled", 3), ("completed", 10)]`, ordered by status.
pub async fn count_by_status(pool: &PgPool) -> Result<Vec<(String, i64)>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT status, count(*) FROM orders_view GROUP BY status ORDER BY status")
            .fetch_all(pool)
            .await?,
    )
}

/// Answers `CompleteOrder` and `CancelOrder`: replies `OrderCompleted` / `OrderCancelled` on
/// `orders.events` (see the crate's reply contract).
#[derive(Clone, Debug)]
pub struct Orders {
    ctx: Context,
}

/// The orders service's handler on the consumer runtime.
pub type OrdersHandler = Shell<Orders>;

impl Orders {
    /// A service writing with `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

impl Responder for Orders {
    const SERVICE: Service = Service::Orders;
    type Request = OrderRequest;
    type State = Loaded<OrderState>;
    type Act = OrderCommand;
    type Reply = OrderEvent;

    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn load(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<Loaded<OrderState>, ServiceError> {
        Ok(self.ctx.store.load_with(tx, &order_id.to_string()).await?)
    }

    fn decide(
        &self,
        state: &Loaded<OrderState>,
        request: OrderRequest,
    ) -> Result<Decision<OrderCommand, OrderEvent>, ServiceError> {
        Ok(match respond(&state.state, &request) {
            Response::Record(command) => Decision::Act(command),
            Response::Repeat(reply) => Decision::Repeat(reply),
            Response::NotApplicable(reason) => Decision::NotApplicable(reason),
        })
    }

    /// Records `command` on the order's stream (its events are the reply) and brings `orders_view` along.
    async fn carry_out(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
        loaded: Loaded<OrderState>,
        command: OrderCommand,
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        let (state, events) = loaded.state.execute(command)?;
        self.ctx
            .store
            .append::<OrderState>(tx, &order_id.to_string(), loaded.version, &events, metadata)
            .await?;
        let (status, reason) = match &state {
            OrderState::Cancelled { reason, .. } => ("cancelled", Some(reason.name())),
            OrderState::Completed(_) => ("completed", None),
            OrderState::NotPlaced | OrderState::Placed(_) => ("placed", None),
        };
        sqlx::query(
            "UPDATE orders_view SET status = $2, cancel_reason = $3, ended_at = now()
             WHERE order_id = $1",
        )
        .bind(order_id.as_uuid())
        .bind(status)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        if status != "placed" {
            let webhook = serde_json::json!({
                "order_id": order_id,
                "status": status,
                "cancel_reason": reason,
                "at": Utc::now(),
            });
            notify::notify_kind(tx, &format!("order.{status}"), &webhook).await?;
        }
        Ok(())
    }
}
