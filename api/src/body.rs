//! `POST /orders`'s body: JSON to a [`PlaceOrder`], naming every field at fault.
//!
//! Two passes, so that one answer lists every problem: the shape (each field present, of its JSON type), then
//! the values, by the orders service's own rules ([`orders::validate_line`], [`orders::validate_address`],
//! [`orders::validate`]) for whatever parsed.

use domain::CustomerId;
use serde_json::{Map, Value};
use services::orders::{self, DeliveryAddress, FieldError, LineInput, PlaceOrder};
use uuid::Uuid;

use crate::problem::FieldProblem;

impl From<FieldError> for FieldProblem {
    fn from(error: FieldError) -> Self {
        Self::new(error.field, error.reason)
    }
}

/// The fields of an order, read from a JSON body.
struct Reader {
    problems: Vec<FieldProblem>,
}

impl Reader {
    fn field<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        name: &str,
    ) -> Option<&'a Value> {
        let value = object.get(name).filter(|v| !v.is_null());
        if value.is_none() {
            self.problems
                .push(FieldProblem::new(join(path, name), "is required"));
        }
        value
    }

    fn string(&mut self, object: &Map<String, Value>, path: &str, name: &str) -> Option<String> {
        let value = self.field(object, path, name)?;
        match value.as_str() {
            Some(text) => Some(text.to_owned()),
            None => {
                self.problems.push(FieldProblem::new(
                    join(path, name),
                    format!("must be a string, not {}", kind(value)),
                ));
                None
            }
        }
    }

    fn integer<T: TryFrom<i64>>(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        name: &str,
        range: &str,
    ) -> Option<T> {
        let value = self.field(object, path, name)?;
        let parsed = value.as_i64().and_then(|n| T::try_from(n).ok());
        if parsed.is_none() {
            let detail = if value.is_number() {
                format!("must be a whole number in {range}, not {value}")
            } else {
                format!("must be a whole number, not {}", kind(value))
            };
            self.problems
                .push(FieldProblem::new(join(path, name), detail));
        }
        parsed
    }

    fn object<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        name: &str,
    ) -> Option<&'a Map<String, Value>> {
        let value = self.field(object, path, name)?;
        let inner = value.as_object();
        if inner.is_none() {
            self.problems.push(FieldProblem::new(
                join(path, name),
                format!("must be an object, not {}", kind(value)),
            ));
        }
        inner
    }

    fn values(&mut self, errors: Vec<FieldError>) {
        self.problems
            .extend(errors.into_iter().map(FieldProblem::from));
    }

    fn customer_id(&mut self, root: &Map<String, Value>) -> Option<CustomerId> {
        let text = self.string(root, "", "customer_id")?;
        let id = Uuid::parse_str(&text)
            .map_err(|e| e.to_string())
            .and_then(|uuid| CustomerId::from_uuid(uuid).map_err(|e| e.to_string()));
        match id {
            Ok(id) => Some(id),
            Err(reason) => {
                self.problems.push(FieldProblem::new(
                    "customer_id",
                    format!("must be a UUID: {reason}"),
                ));
                None
            }
        }
    }

    fn lines(&mut self, root: &Map<String, Value>) -> Option<Vec<LineInput>> {
        let value = self.field(root, "", "lines")?;
        let Some(items) = value.as_array() else {
            self.problems.push(FieldProblem::new(
                "lines",
                format!("must be an array, not {}", kind(value)),
            ));
            return None;
        };
        let mut lines = Some(Vec::with_capacity(items.len()));
        for (n, item) in items.iter().enumerate() {
            let line = self.line(n, item);
            match (line, &mut lines) {
                (Some(line), Some(lines)) => lines.push(line),
                _ => lines = None,
            }
        }
        lines
    }

    fn line(&mut self, n: usize, item: &Value) -> Option<LineInput> {
        let path = format!("lines[{n}]");
        let Some(object) = item.as_object() else {
            self.problems.push(FieldProblem::new(
                &path,
                format!("must be an object, not {}", kind(item)),
            ));
            return None;
        };
        let sku = self.string(object, &path, "sku");
        let quantity = self.integer::<u32>(object, &path, "quantity", "0..=4294967295");
        let price = self.integer::<i64>(object, &path, "unit_price_minor", "i64");
        let currency = self.string(object, &path, "currency");
        let line = LineInput::new(sku?, quantity?, price?, currency?);
        match orders::validate_line(n, &line) {
            Ok(_) => Some(line),
            Err(errors) => {
                self.values(errors);
                None
            }
        }
    }

    fn address(&mut self, root: &Map<String, Value>) -> Option<DeliveryAddress> {
        let path = "delivery_address";
        let object = self.object(root, "", path)?;
        // Every field is read (and each missing one named) before any is given up on.
        let name = self.string(object, path, "name");
        let street = self.string(object, path, "street");
        let city = self.string(object, path, "city");
        let postal_code = self.string(object, path, "postal_code");
        let country = self.string(object, path, "country");
        let address = DeliveryAddress {
            name: name?,
            street: street?,
            city: city?,
            postal_code: postal_code?,
            country: country?,
        };
        match orders::validate_address(&address) {
            Ok(()) => Some(address),
            Err(errors) => {
                self.values(errors);
                None
            }
        }
    }
}

/// `path.name`, or `name` at the root.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The JSON type of `value`, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The order `body` asks for, under the client's `idempotency_key`, or every field at fault.
pub(crate) fn order_of(
    body: &Value,
    idempotency_key: String,
) -> Result<PlaceOrder, Vec<FieldProblem>> {
    let Some(root) = body.as_object() else {
        return Err(vec![FieldProblem::new(
            "",
            format!("the body must be a JSON object, not {}", kind(body)),
        )]);
    };
    let mut reader = Reader {
        problems: Vec::new(),
    };
    let customer_id = reader.customer_id(root);
    let lines = reader.lines(root);
    let address = reader.address(root);
    let (Some(customer_id), Some(lines), Some(address)) = (customer_id, lines, address) else {
        return Err(reader.problems);
    };
    let order = PlaceOrder {
        idempotency_key: Some(idempotency_key),
        customer_id,
        lines,
        delivery_address: Some(address),
    };
    // What only the whole order can say: how many lines, one currency.
    match orders::validate(&order) {
        Ok(_) if reader.problems.is_empty() => Ok(order),
        Ok(_) => Err(reader.problems),
        Err(errors) => {
            reader.values(errors);
            Err(reader.problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(body: Value) -> Vec<String> {
        order_of(&body, "key-1".into())
            .unwrap_err()
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    fn address() -> Value {
        json!({"name": "Ada", "street": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"})
    }

    #[test]
    fn a_valid_body_is_an_order() {
        let customer = Uuid::now_v7();
        let order = order_of(
            &json!({
                "customer_id": customer.to_string(),
                "lines": [{"sku": "MUG-RED", "quantity": 2, "unit_price_minor": 1250, "currency": "EUR"}],
                "delivery_address": address(),
            }),
            "key-1".into(),
        )
        .unwrap();
        assert_eq!(order.customer_id.as_uuid(), customer);
        assert_eq!(order.lines, [LineInput::new("MUG-RED", 2, 1250, "EUR")]);
        assert_eq!(order.idempotency_key.as_deref(), Some("key-1"));
        assert_eq!(order.delivery_address.unwrap().city, "Berlin");
    }

    #[test]
    fn every_bad_field_is_named_by_its_path() {
        let got = fields(json!({
            "customer_id": "not-a-uuid",
            "lines": [
                {"sku": "MUG-RED", "quantity": 1, "unit_price_minor": 100, "currency": "EUR"},
                {"sku": "bad sku", "quantity": 0, "unit_price_minor": "ten", "currency": "EUR"},
                7,
            ],
            "delivery_address": {"name": "", "street": "1 Main St", "city": "Berlin", "country": "Germany"},
        }));
        assert_eq!(
            got,
            [
                "customer_id",
                "lines[1].unit_price_minor",
                "lines[2]",
                "delivery_address.postal_code",
            ],
            "the shape first: the values of an incomplete line or address are not checked"
        );
        let got = fields(json!({
            "customer_id": Uuid::now_v7().to_string(),
            "lines": [{"sku": "bad sku", "quantity": 0, "unit_price_minor": 100, "currency": "EUR"}],
            "delivery_address": {"name": "", "street": "1 Main St", "city": "Berlin", "postal_code": "1", "country": "Germany"},
        }));
        assert_eq!(
            got,
            [
                "lines[0].sku",
                "lines[0].quantity",
                "delivery_address.name",
                "delivery_address.country"
            ]
        );
    }

    #[test]
    fn missing_fields_and_wrong_types_are_named() {
        assert_eq!(
            fields(json!({"lines": {}, "delivery_address": "home"})),
            ["customer_id", "lines", "delivery_address"]
        );
        assert_eq!(fields(json!([1, 2])), [""]);
        assert_eq!(
            fields(
                json!({"customer_id": Uuid::now_v7().to_string(), "lines": [], "delivery_address": address()})
            ),
            ["lines"]
        );
    }

    #[test]
    fn lines_in_two_currencies_are_refused_as_a_whole() {
        let got = fields(json!({
            "customer_id": Uuid::now_v7().to_string(),
            "lines": [
                {"sku": "A-1", "quantity": 1, "unit_price_minor": 100, "currency": "EUR"},
                {"sku": "B-1", "quantity": 1, "unit_price_minor": 100, "currency": "USD"},
            ],
            "delivery_address": address(),
        }));
        assert_eq!(got, ["lines"]);
    }
}
