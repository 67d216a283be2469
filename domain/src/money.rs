//! [`Currency`] (ISO 4217, from a fixed table) and [`Money`] (integer minor units).

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::error::{ValidationError, excerpt};
use crate::lines::Quantity;

/// An ISO 4217 currency from the table of supported currencies ([`Currency::all`]),
/// with its minor-unit exponent (EUR 2, JPY 0, KWD 3, ...).
///
/// Parsing refuses anything that is not exactly three ASCII uppercase letters, then any
/// code not in the table. Serializes as the code, e.g. `"EUR"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency {
    code: &'static str,
    minor_exponent: u8,
}

macro_rules! currencies {
    ($($code:ident => $exponent:literal),* $(,)?) => {
        impl Currency {
            $(
                #[doc = concat!("ISO 4217 `", stringify!($code), "`, ", stringify!($exponent), " decimal places.")]
                pub const $code: Self = Self { code: stringify!($code), minor_exponent: $exponent };
            )*

            const ALL: &'static [Self] = &[$(Self::$code),*];
        }
    };
}

currencies! {
    USD => 2, EUR => 2, GBP => 2, JPY => 0, CHF => 2, CAD => 2, AUD => 2, NZD => 2,
    SEK => 2, NOK => 2, DKK => 2, PLN => 2, CZK => 2, HUF => 2, RON => 2, TRY => 2,
    CNY => 2, HKD => 2, SGD => 2, TWD => 2, INR => 2, IDR => 2, MYR => 2, PHP => 2,
    THB => 2, VND => 0, KRW => 0, ILS => 2, AED => 2, SAR => 2, BRL => 2, MXN => 2,
    CLP => 0, ZAR => 2, KWD => 3, BHD => 3, OMR => 3, JOD => 3, TND => 3, ISK => 0,
}

impl Currency {
    /// Every supported currency.
    #[must_use]
    pub const fn all() -> &'static [Self] {
        Self::ALL
    }

    /// Looks `code` up.
    ///
    /// # Errors
    /// [`ValidationError::MalformedCurrency`] unless `code` is three ASCII uppercase
    /// letters; [`ValidationError::UnknownCurrency`] if it is not in the table.
    pub fn new(code: &str) -> Result<Self, ValidationError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ValidationError::MalformedCurrency {
                input: excerpt(code),
            });
        }
        Self::ALL
            .iter()
            .find(|currency| currency.code == code)
            .copied()
            .ok_or_else(|| ValidationError::UnknownCurrency {
                code: code.to_owned(),
            })
    }

    /// The three-letter code, e.g. `"EUR"`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        self.code
    }

    /// Number of decimal places of the minor unit: 2 for EUR (cents), 0 for JPY.
    #[must_use]
    pub const fn minor_exponent(self) -> u8 {
        self.minor_exponent
    }

    /// How many minor units make one major unit: 100 for EUR, 1 for JPY, 1000 for KWD.
    #[must_use]
    pub const fn minor_per_major(self) -> i64 {
        10_i64.pow(self.minor_exponent as u32)
    }
}

impl TryFrom<&str> for Currency {
    type Error = ValidationError;

    fn try_from(code: &str) -> Result<Self, Self::Error> {
        Self::new(code)
    }
}

impl TryFrom<String> for Currency {
    type Error = ValidationError;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::new(&code)
    }
}

impl From<Currency> for &'static str {
    fn from(currency: Currency) -> Self {
        currency.code
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

// By hand rather than `#[serde(try_from = "String")]`: the derive would tie `'de` to the
// `&'static str` field.
impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::new(&code).map_err(de::Error::custom)
    }
}

impl FromStr for Currency {
    type Err = ValidationError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::new(code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// An amount of money: a non-negative whole number of minor units (cents, yen, fils) in
/// one currency, at most [`Money::MAX_MINOR`].
///
/// No floating point anywhere. Arithmetic is checked: it returns an error instead of
/// panicking, wrapping or saturating, and mixing currencies is an error. Displays as
/// `"12.34 EUR"`; serializes as `{"minor": 1234, "currency": "EUR"}`, and deserialization
/// validates like [`Money::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyRepr", into = "MoneyRepr")]
pub struct Money {
    minor: i64,
    currency: Currency,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyRepr {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// The largest amount, in minor units: 10^13, i.e. 100 billion major units at two
    /// decimals. Far above any real order, and small enough that adding two amounts or
    /// multiplying one by a [`Quantity`] can never overflow an `i64` on the way.
    pub const MAX_MINOR: i64 = 10_000_000_000_000;

    /// `minor` minor units of `currency`.
    ///
    /// # Errors
    /// [`ValidationError::NegativeAmount`] below zero,
    /// [`ValidationError::AmountTooLarge`] above [`Money::MAX_MINOR`].
    pub fn new(minor: i64, currency: Currency) -> Result<Self, ValidationError> {
        Self::from_wide(i128::from(minor), currency)
    }

    /// Zero in `currency`.
    #[must_use]
    pub const fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    fn from_wide(minor: i128, currency: Currency) -> Result<Self, ValidationError> {
        if minor < 0 {
            return Err(ValidationError::NegativeAmount { minor });
        }
        match i64::try_from(minor) {
            Ok(minor) if minor <= Self::MAX_MINOR => Ok(Self { minor, currency }),
            _ => Err(ValidationError::AmountTooLarge { minor }),
        }
    }

    /// The amount in minor units.
    #[must_use]
    pub const fn minor(self) -> i64 {
        self.minor
    }

    /// The currency.
    #[must_use]
    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// Whether the amount is zero.
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.minor == 0
    }

    fn same_currency(self, other: Self) -> Result<(), ValidationError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(ValidationError::CurrencyMismatch {
                field: "amount",
                expected: self.currency,
                found: other.currency,
            })
        }
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`ValidationError::CurrencyMismatch`] for different currencies,
    /// [`ValidationError::AmountTooLarge`] past [`Money::MAX_MINOR`].
    pub fn checked_add(self, other: Self) -> Result<Self, ValidationError> {
        self.same_currency(other)?;
        Self::from_wide(
            i128::from(self.minor) + i128::from(other.minor),
            self.currency,
        )
    }

    /// `self - other`.
    ///
    /// # Errors
    /// [`ValidationError::CurrencyMismatch`] for different currencies,
    /// [`ValidationError::NegativeAmount`] if `other` is larger.
    pub fn checked_sub(self, other: Self) -> Result<Self, ValidationError> {
        self.same_currency(other)?;
        Self::from_wide(
            i128::from(self.minor) - i128::from(other.minor),
            self.currency,
        )
    }

    /// `self × quantity`, e.g. a line total from a unit price.
    ///
    /// # Errors
    /// [`ValidationError::AmountTooLarge`] past [`Money::MAX_MINOR`].
    pub fn checked_mul(self, quantity: Quantity) -> Result<Self, ValidationError> {
        Self::from_wide(
            i128::from(self.minor) * i128::from(quantity.get()),
            self.currency,
        )
    }
}

impl TryFrom<MoneyRepr> for Money {
    type Error = ValidationError;

    fn try_from(repr: MoneyRepr) -> Result<Self, Self::Error> {
        Self::new(repr.minor, repr.currency)
    }
}

impl From<Money> for MoneyRepr {
    fn from(money: Money) -> Self {
        Self {
            minor: money.minor,
            currency: money.currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = usize::from(self.currency.minor_exponent);
        if exponent == 0 {
            return write!(f, "{} {}", self.minor, self.currency);
        }
        let per_major = self.currency.minor_per_major();
        write!(
            f,
            "{}.{:0exponent$} {}",
            self.minor / per_major,
            self.minor % per_major,
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR).unwrap()
    }

    fn qty(n: u32) -> Quantity {
        Quantity::new(n).unwrap()
    }

    #[test]
    fn currency_accepts_known_codes_with_their_exponents() {
        assert_eq!(Currency::new("EUR").unwrap(), Currency::EUR);
        assert_eq!(Currency::new("JPY").unwrap().minor_exponent(), 0);
        assert_eq!(Currency::new("KRW").unwrap().minor_exponent(), 0);
        assert_eq!(Currency::new("ISK").unwrap().minor_exponent(), 0);
        assert_eq!(Currency::new("KWD").unwrap().minor_exponent(), 3);
        assert_eq!(Currency::new("BHD").unwrap().minor_exponent(), 3);
        assert_eq!(Currency::new("TND").unwrap().minor_exponent(), 3);
        assert_eq!(Currency::new("USD").unwrap().minor_per_major(), 100);
        assert_eq!(Currency::KWD.minor_per_major(), 1000);
        assert_eq!("GBP".parse::<Currency>().unwrap().code(), "GBP");
        assert!(Currency::all().len() >= 25);
    }

    #[test]
    fn currency_table_has_no_duplicates_and_only_well_formed_codes() {
        for (i, currency) in Currency::all().iter().enumerate() {
            assert_eq!(Currency::new(currency.code()), Ok(*currency));
            assert!(matches!(currency.minor_exponent(), 0 | 2 | 3), "{currency}");
            assert!(
                !Currency::all()[i + 1..].contains(currency),
                "{currency} listed twice"
            );
        }
    }

    #[test]
    fn currency_refuses_malformed_and_unknown_codes() {
        for bad in ["", "eu", "eur", "EURO", "E1R", "ÉUR", " EUR", "EU R"] {
            assert_eq!(
                Currency::new(bad),
                Err(ValidationError::MalformedCurrency {
                    input: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
        let err = Currency::new("XYZ").unwrap_err();
        assert_eq!(
            err,
            ValidationError::UnknownCurrency {
                code: "XYZ".to_owned()
            }
        );
        assert_eq!(
            err.to_string(),
            "currency XYZ is not a supported ISO 4217 code"
        );
    }

    #[test]
    fn currency_serde_round_trips_and_validates() {
        assert_eq!(serde_json::to_string(&Currency::CHF).unwrap(), "\"CHF\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"CHF\"").unwrap(),
            Currency::CHF
        );
        let err = serde_json::from_str::<Currency>("\"chf\"").unwrap_err();
        assert!(err.to_string().contains("three ASCII uppercase"), "{err}");
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }

    #[test]
    fn money_accepts_zero_to_max_and_refuses_outside() {
        assert!(eur(0).is_zero());
        assert_eq!(eur(Money::MAX_MINOR).minor(), Money::MAX_MINOR);
        assert_eq!(
            Money::new(-1, Currency::EUR),
            Err(ValidationError::NegativeAmount { minor: -1 })
        );
        assert_eq!(
            Money::new(Money::MAX_MINOR + 1, Currency::EUR),
            Err(ValidationError::AmountTooLarge {
                minor: i128::from(Money::MAX_MINOR) + 1
            })
        );
        assert!(Money::new(i64::MAX, Currency::EUR).is_err());
        assert!(Money::new(i64::MIN, Currency::EUR).is_err());
    }

    #[test]
    fn money_displays_with_the_currency_exponent() {
        assert_eq!(eur(1234).to_string(), "12.34 EUR");
        assert_eq!(eur(5).to_string(), "0.05 EUR");
        assert_eq!(eur(0).to_string(), "0.00 EUR");
        assert_eq!(
            Money::new(1234, Currency::JPY).unwrap().to_string(),
            "1234 JPY"
        );
        assert_eq!(
            Money::new(1234, Currency::KWD).unwrap().to_string(),
            "1.234 KWD"
        );
        assert_eq!(
            Money::new(7, Currency::BHD).unwrap().to_string(),
            "0.007 BHD"
        );
    }

    #[test]
    fn money_add_sub_mul() {
        assert_eq!(eur(150).checked_add(eur(50)), Ok(eur(200)));
        assert_eq!(eur(150).checked_sub(eur(50)), Ok(eur(100)));
        assert_eq!(eur(150).checked_sub(eur(150)), Ok(eur(0)));
        assert_eq!(
            eur(50).checked_sub(eur(150)),
            Err(ValidationError::NegativeAmount { minor: -100 })
        );
        assert_eq!(eur(250).checked_mul(qty(4)), Ok(eur(1000)));
        assert!(matches!(
            eur(Money::MAX_MINOR).checked_add(eur(1)),
            Err(ValidationError::AmountTooLarge { .. })
        ));
        assert!(matches!(
            eur(Money::MAX_MINOR).checked_mul(qty(Quantity::MAX)),
            Err(ValidationError::AmountTooLarge { .. })
        ));
    }

    #[test]
    fn money_refuses_mixing_currencies() {
        let usd = Money::new(100, Currency::USD).unwrap();
        let err = eur(100).checked_add(usd).unwrap_err();
        assert_eq!(
            err,
            ValidationError::CurrencyMismatch {
                field: "amount",
                expected: Currency::EUR,
                found: Currency::USD
            }
        );
        assert_eq!(err.to_string(), "amount must be in EUR, got USD");
        assert!(eur(100).checked_sub(usd).is_err());
    }

    #[test]
    fn money_serde_round_trips_and_validates() {
        let money = eur(1234);
        let json = serde_json::to_value(money).unwrap();
        assert_eq!(json, serde_json::json!({"minor": 1234, "currency": "EUR"}));
        assert_eq!(serde_json::from_value::<Money>(json).unwrap(), money);

        for bad in [
            r#"{"minor": -1, "currency": "EUR"}"#,
            r#"{"minor": 10000000000001, "currency": "EUR"}"#,
            r#"{"minor": 1, "currency": "eur"}"#,
            r#"{"minor": 1, "currency": "XXX"}"#,
            r#"{"minor": 1.5, "currency": "EUR"}"#,
            r#"{"minor": 1}"#,
            r#"{"minor": 1, "currency": "EUR", "extra": true}"#,
        ] {
            assert!(
                serde_json::from_str::<Money>(bad).is_err(),
                "accepted {bad}"
            );
        }
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::all())
    }

    proptest! {
        #[test]
        fn currency_accepts_exactly_the_table(code in "[A-Z]{3}|.{0,5}") {
            let known = Currency::all().iter().any(|c| c.code() == code);
            prop_assert_eq!(Currency::new(&code).is_ok(), known);
        }

        #[test]
        fn money_new_accepts_exactly_zero_to_max(minor in any::<i64>()) {
            prop_assert_eq!(
                Money::new(minor, Currency::EUR).is_ok(),
                (0..=Money::MAX_MINOR).contains(&minor)
            );
        }

        #[test]
        fn money_add_never_panics_and_is_exact_when_ok(
            a in 0..=Money::MAX_MINOR,
            b in 0..=Money::MAX_MINOR,
            ca in any_currency(),
            cb in any_currency(),
        ) {
            let x = Money::new(a, ca).unwrap();
            let y = Money::new(b, cb).unwrap();
            match x.checked_add(y) {
                Ok(sum) => {
                    prop_assert_eq!(ca, cb);
                    prop_assert_eq!(i128::from(sum.minor()), i128::from(a) + i128::from(b));
                    prop_assert_eq!(sum.checked_sub(y), Ok(x));
                }
                Err(ValidationError::CurrencyMismatch { .. }) => prop_assert_ne!(ca, cb),
                Err(ValidationError::AmountTooLarge { .. }) => {
                    prop_assert_eq!(ca, cb);
                    prop_assert!(i128::from(a) + i128::from(b) > i128::from(Money::MAX_MINOR));
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }

        #[test]
        fn money_mul_never_panics_and_is_exact_when_ok(
            a in 0..=Money::MAX_MINOR,
            n in Quantity::MIN..=Quantity::MAX,
        ) {
            let product = i128::from(a) * i128::from(n);
            match eur(a).checked_mul(qty(n)) {
                Ok(total) => prop_assert_eq!(i128::from(total.minor()), product),
                Err(err) => {
                    prop_assert_eq!(err, ValidationError::AmountTooLarge { minor: product });
                }
            }
        }

        #[test]
        fn money_display_parses_back_to_the_amount(
            minor in 0..=Money::MAX_MINOR,
            currency in any_currency(),
        ) {
            let money = Money::new(minor, currency).unwrap();
            let shown = money.to_string();
            let (number, code) = shown.split_once(' ').unwrap();
            prop_assert_eq!(code, currency.code());
            let digits: String = number.chars().filter(|c| *c != '.').collect();
            prop_assert_eq!(digits.parse::<i64>().unwrap(), minor);
            let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
            prop_assert_eq!(decimals, usize::from(currency.minor_exponent()));
        }

        #[test]
        fn money_serde_round_trips(minor in 0..=Money::MAX_MINOR, currency in any_currency()) {
            let money = Money::new(minor, currency).unwrap();
            let json = serde_json::to_string(&money).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        }
    }
}
