//! What an order contains: [`Sku`], [`Quantity`], [`OrderLine`], [`OrderLines`].

use core::fmt;
use core::str::FromStr;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, excerpt};
use crate::money::{Currency, Money};

/// A stock-keeping unit: 1 to [`Sku::MAX_LEN`] characters from `A-Z`, `0-9`, `-` and
/// `_`, not starting or ending with `-`. E.g. `"MUG-RED_XL"`.
///
/// Serializes as the string; deserialization validates like [`Sku::new`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    /// The longest SKU, in characters.
    pub const MAX_LEN: usize = 64;

    /// Validates `sku`.
    ///
    /// # Errors
    /// [`ValidationError::SkuLength`], [`ValidationError::SkuCharacter`] or
    /// [`ValidationError::SkuDash`].
    pub fn new(sku: impl Into<String>) -> Result<Self, ValidationError> {
        let sku = sku.into();
        let len = sku.chars().count();
        if !(1..=Self::MAX_LEN).contains(&len) {
            return Err(ValidationError::SkuLength { len });
        }
        if let Some(found) = sku
            .chars()
            .find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '-' | '_')))
        {
            return Err(ValidationError::SkuCharacter {
                found,
                input: excerpt(&sku),
            });
        }
        if sku.starts_with('-') || sku.ends_with('-') {
            return Err(ValidationError::SkuDash { input: sku });
        }
        Ok(Self(sku))
    }

    /// The SKU as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = ValidationError;

    fn try_from(sku: String) -> Result<Self, Self::Error> {
        Self::new(sku)
    }
}

impl TryFrom<&str> for Sku {
    type Error = ValidationError;

    fn try_from(sku: &str) -> Result<Self, Self::Error> {
        Self::new(sku)
    }
}

impl FromStr for Sku {
    type Err = ValidationError;

    fn from_str(sku: &str) -> Result<Self, Self::Err> {
        Self::new(sku)
    }
}

impl From<Sku> for String {
    fn from(sku: Sku) -> Self {
        sku.0
    }
}

impl AsRef<str> for Sku {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sku({})", self.0)
    }
}

/// How many units of a SKU an order line asks for: [`Quantity::MIN`]`..=`[`Quantity::MAX`].
///
/// Serializes as the number; deserialization validates like [`Quantity::new`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// The smallest quantity.
    pub const MIN: u32 = 1;
    /// The largest quantity on one order line.
    pub const MAX: u32 = 10_000;

    /// Validates `n`.
    ///
    /// # Errors
    /// [`ValidationError::QuantityOutOfRange`] outside `MIN..=MAX`.
    pub const fn new(n: u32) -> Result<Self, ValidationError> {
        if n >= Self::MIN && n <= Self::MAX {
            Ok(Self(n))
        } else {
            Err(ValidationError::QuantityOutOfRange { got: n })
        }
    }

    /// The number of units.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = ValidationError;

    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<Quantity> for u32 {
    fn from(quantity: Quantity) -> Self {
        quantity.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({})", self.0)
    }
}

/// One line of an order. Each field is valid by construction; what makes a set of lines
/// valid together is checked by [`OrderLines`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// What is ordered.
    pub sku: Sku,
    /// How many.
    pub quantity: Quantity,
    /// Price of one unit.
    pub unit_price: Money,
}

impl OrderLine {
    /// `unit_price × quantity`.
    ///
    /// # Errors
    /// [`ValidationError::AmountTooLarge`] past [`Money::MAX_MINOR`].
    pub fn line_total(&self) -> Result<Money, ValidationError> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// The lines of one order: 1 to [`OrderLines::MAX_LINES`] lines, all priced in one
/// currency, no SKU twice, and a total that fits in [`Money`] (computed once, with
/// checked arithmetic, at construction).
///
/// Serializes as the array of lines; deserialization validates like [`OrderLines::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<OrderLine>", into = "Vec<OrderLine>")]
pub struct OrderLines {
    lines: Vec<OrderLine>,
    total: Money,
}

impl OrderLines {
    /// The most lines an order may have.
    pub const MAX_LINES: usize = 100;

    /// Validates `lines` together and computes their total.
    ///
    /// # Errors
    /// [`ValidationError::NoOrderLines`], [`ValidationError::TooManyOrderLines`],
    /// [`ValidationError::MixedCurrencies`], [`ValidationError::DuplicateSku`], or
    /// [`ValidationError::AmountTooLarge`] if a line total or the order total is too large.
    pub fn new(lines: Vec<OrderLine>) -> Result<Self, ValidationError> {
        let Some(first) = lines.first() else {
            return Err(ValidationError::NoOrderLines);
        };
        if lines.len() > Self::MAX_LINES {
            return Err(ValidationError::TooManyOrderLines { count: lines.len() });
        }
        let currency: Currency = first.unit_price.currency();
        let mut seen = BTreeSet::new();
        let mut total = Money::zero(currency);
        for (index, line) in lines.iter().enumerate() {
            let found = line.unit_price.currency();
            if found != currency {
                return Err(ValidationError::MixedCurrencies {
                    line: index,
                    expected: currency,
                    found,
                });
            }
            if !seen.insert(&line.sku) {
                return Err(ValidationError::DuplicateSku {
                    sku: line.sku.clone(),
                });
            }
            total = total.checked_add(line.line_total()?)?;
        }
        Ok(Self { lines, total })
    }

    /// The lines, in the order given.
    #[must_use]
    pub fn as_slice(&self) -> &[OrderLine] {
        &self.lines
    }

    /// Iterates over the lines.
    pub fn iter(&self) -> core::slice::Iter<'_, OrderLine> {
        self.lines.iter()
    }

    /// Sum of all line totals.
    #[must_use]
    pub const fn total(&self) -> Money {
        self.total
    }

    /// The one currency of all lines.
    #[must_use]
    pub const fn currency(&self) -> Currency {
        self.total.currency()
    }
}

impl TryFrom<Vec<OrderLine>> for OrderLines {
    type Error = ValidationError;

    fn try_from(lines: Vec<OrderLine>) -> Result<Self, Self::Error> {
        Self::new(lines)
    }
}

impl From<OrderLines> for Vec<OrderLine> {
    fn from(lines: OrderLines) -> Self {
        lines.lines
    }
}

impl<'a> IntoIterator for &'a OrderLines {
    type Item = &'a OrderLine;
    type IntoIter = core::slice::Iter<'a, OrderLine>;

    fn into_iter(self) -> Self::IntoIter {
        self.lines.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(sku: &str, quantity: u32, minor: i64, currency: Currency) -> OrderLine {
        OrderLine {
            sku: Sku::new(sku).unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: Money::new(minor, currency).unwrap(),
        }
    }

    #[test]
    fn sku_accepts_valid_codes() {
        for ok in [
            "A",
            "MUG-RED",
            "MUG_RED_XL",
            "_X_",
            "123",
            "A-1-B",
            &"Z".repeat(64),
        ] {
            assert_eq!(Sku::new(ok).unwrap().as_str(), ok);
            assert_eq!(ok.parse::<Sku>().unwrap().to_string(), ok);
        }
    }

    #[test]
    fn sku_refuses_bad_codes_saying_why() {
        assert_eq!(Sku::new(""), Err(ValidationError::SkuLength { len: 0 }));
        assert_eq!(
            Sku::new("Z".repeat(65)),
            Err(ValidationError::SkuLength { len: 65 })
        );
        assert_eq!(
            Sku::new("mug"),
            Err(ValidationError::SkuCharacter {
                found: 'm',
                input: "mug".to_owned()
            })
        );
        for bad in ["MUG RED", "MUG.RED", "MÜG", "MUG\n", "MUG/1"] {
            assert!(
                matches!(Sku::new(bad), Err(ValidationError::SkuCharacter { .. })),
                "{bad:?}"
            );
        }
        for bad in ["-MUG", "MUG-", "-"] {
            assert_eq!(
                Sku::new(bad),
                Err(ValidationError::SkuDash {
                    input: bad.to_owned()
                })
            );
        }
        assert_eq!(
            Sku::new("-MUG").unwrap_err().to_string(),
            "sku must not start or end with '-', got \"-MUG\""
        );
    }

    #[test]
    fn sku_serde_validates() {
        let sku = Sku::new("MUG-RED").unwrap();
        assert_eq!(serde_json::to_string(&sku).unwrap(), "\"MUG-RED\"");
        assert_eq!(serde_json::from_str::<Sku>("\"MUG-RED\"").unwrap(), sku);
        for bad in ["\"\"", "\"mug\"", "\"MUG-\"", "7"] {
            assert!(serde_json::from_str::<Sku>(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn quantity_bounds() {
        assert_eq!(Quantity::new(1).unwrap().get(), 1);
        assert_eq!(Quantity::new(Quantity::MAX).unwrap().get(), 10_000);
        assert_eq!(
            Quantity::new(0),
            Err(ValidationError::QuantityOutOfRange { got: 0 })
        );
        assert_eq!(
            Quantity::try_from(10_001),
            Err(ValidationError::QuantityOutOfRange { got: 10_001 })
        );
        assert_eq!(
            Quantity::new(0).unwrap_err().to_string(),
            "quantity must be between 1 and 10000, got 0"
        );
    }

    #[test]
    fn quantity_serde_validates() {
        let q = Quantity::new(3).unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), "3");
        assert_eq!(serde_json::from_str::<Quantity>("3").unwrap(), q);
        for bad in ["0", "10001", "-1", "1.5", "\"3\"", "4294967296"] {
            assert!(
                serde_json::from_str::<Quantity>(bad).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn order_lines_total_is_the_sum_of_line_totals() {
        let lines = OrderLines::new(vec![
            line("MUG", 2, 1250, Currency::EUR),
            line("TEA", 3, 499, Currency::EUR),
        ])
        .unwrap();
        assert_eq!(
            lines.total(),
            Money::new(2500 + 1497, Currency::EUR).unwrap()
        );
        assert_eq!(lines.currency(), Currency::EUR);
        assert_eq!(lines.as_slice().len(), 2);
        assert_eq!(lines.iter().count(), 2);
        assert_eq!(lines.as_slice()[1].sku.as_str(), "TEA");
    }

    #[test]
    fn order_lines_refuse_empty_too_many_mixed_and_duplicates() {
        assert_eq!(OrderLines::new(vec![]), Err(ValidationError::NoOrderLines));

        let many: Vec<_> = (0..=OrderLines::MAX_LINES)
            .map(|i| line(&format!("SKU{i}"), 1, 100, Currency::EUR))
            .collect();
        assert_eq!(
            OrderLines::new(many[..OrderLines::MAX_LINES].to_vec())
                .unwrap()
                .as_slice()
                .len(),
            100
        );
        assert_eq!(
            OrderLines::new(many),
            Err(ValidationError::TooManyOrderLines { count: 101 })
        );

        assert_eq!(
            OrderLines::new(vec![
                line("MUG", 1, 100, Currency::EUR),
                line("TEA", 1, 100, Currency::USD),
            ]),
            Err(ValidationError::MixedCurrencies {
                line: 1,
                expected: Currency::EUR,
                found: Currency::USD
            })
        );

        let err = OrderLines::new(vec![
            line("MUG", 1, 100, Currency::EUR),
            line("MUG", 2, 100, Currency::EUR),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "order lines must not repeat a sku, got MUG twice"
        );
    }

    #[test]
    fn order_lines_refuse_totals_past_the_money_bound() {
        let line_too_large = line("MUG", 2, Money::MAX_MINOR, Currency::EUR);
        assert!(matches!(
            OrderLines::new(vec![line_too_large]),
            Err(ValidationError::AmountTooLarge { .. })
        ));
        let sum_too_large = vec![
            line("MUG", 1, Money::MAX_MINOR, Currency::EUR),
            line("TEA", 1, 1, Currency::EUR),
        ];
        assert!(matches!(
            OrderLines::new(sum_too_large),
            Err(ValidationError::AmountTooLarge { .. })
        ));
    }

    #[test]
    fn order_lines_serde_round_trips_and_validates() {
        let lines = OrderLines::new(vec![line("MUG", 2, 1250, Currency::EUR)]).unwrap();
        let json = serde_json::to_value(&lines).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"sku": "MUG", "quantity": 2, "unit_price": {"minor": 1250, "currency": "EUR"}}
            ])
        );
        assert_eq!(serde_json::from_value::<OrderLines>(json).unwrap(), lines);

        for bad in [
            serde_json::json!([]),
            serde_json::json!([
                {"sku": "MUG", "quantity": 1, "unit_price": {"minor": 1, "currency": "EUR"}},
                {"sku": "MUG", "quantity": 1, "unit_price": {"minor": 1, "currency": "EUR"}}
            ]),
            serde_json::json!([
                {"sku": "MUG", "quantity": 0, "unit_price": {"minor": 1, "currency": "EUR"}}
            ]),
            serde_json::json!([
                {"sku": "mug", "quantity": 1, "unit_price": {"minor": 1, "currency": "EUR"}}
            ]),
        ] {
            assert!(
                serde_json::from_value::<OrderLines>(bad.clone()).is_err(),
                "accepted {bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn quantity_accepts_exactly_one_to_max(n in any::<u32>()) {
            prop_assert_eq!(Quantity::new(n).is_ok(), (1..=Quantity::MAX).contains(&n));
        }

        #[test]
        fn sku_accepts_generated_valid_codes(sku in "[A-Z0-9_]([A-Z0-9_-]{0,62}[A-Z0-9_])?") {
            let parsed = Sku::new(sku.as_str()).unwrap();
            prop_assert_eq!(parsed.as_str(), sku.as_str());
        }

        #[test]
        fn sku_validation_matches_the_rule(sku in "[A-Za-z0-9 _.-]{0,70}") {
            let valid = (1..=Sku::MAX_LEN).contains(&sku.len())
                && sku.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
                && !sku.starts_with('-')
                && !sku.ends_with('-');
            prop_assert_eq!(Sku::new(sku.as_str()).is_ok(), valid);
        }

        #[test]
        fn order_lines_total_never_panics_and_matches_exact_sum(
            prices in proptest::collection::vec((0..=Money::MAX_MINOR, 1..=Quantity::MAX), 1..=10)
        ) {
            let lines: Vec<_> = prices
                .iter()
                .enumerate()
                .map(|(i, (minor, n))| line(&format!("SKU{i}"), *n, *minor, Currency::USD))
                .collect();
            let exact: i128 = prices.iter().map(|(m, n)| i128::from(*m) * i128::from(*n)).sum();
            let line_too_large = prices
                .iter()
                .any(|(m, n)| i128::from(*m) * i128::from(*n) > i128::from(Money::MAX_MINOR));
            match OrderLines::new(lines) {
                Ok(ok) => prop_assert_eq!(i128::from(ok.total().minor()), exact),
                Err(ValidationError::AmountTooLarge { .. }) => {
                    prop_assert!(line_too_large || exact > i128::from(Money::MAX_MINOR));
                }
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
    }
}
