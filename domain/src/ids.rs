//! Identifiers: newtypes over UUID version 7 (time-ordered, RFC 9562).
//!
//! Every id type refuses anything that is not a v7 UUID of the RFC variant, whether it
//! arrives through [`FromStr`], [`TryFrom<Uuid>`] or serde, and the error names the field
//! (`"order_id"`, ...). Ids serialize as the hyphenated lowercase string.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::{Uuid, Variant, Version};

use crate::error::{ValidationError, excerpt};

fn check_v7(field: &'static str, value: Uuid) -> Result<Uuid, ValidationError> {
    if value.get_version() == Some(Version::SortRand) && value.get_variant() == Variant::RFC4122 {
        Ok(value)
    } else {
        Err(ValidationError::NotUuidV7 {
            field,
            value,
            version: value.get_version_num(),
        })
    }
}

macro_rules! uuid_v7_id {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "Uuid", into = "Uuid")]
        pub struct $name(Uuid);

        // `Default` would have to mint a fresh random id, which a default should not hide.
        #[allow(clippy::new_without_default)]
        impl $name {
            /// The field name used in error messages.
            pub const FIELD: &'static str = $field;

            /// A fresh id (`Uuid::now_v7`), ordered by creation time.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps `value` if it is a v7 UUID.
            ///
            /// # Errors
            /// [`ValidationError::NotUuidV7`] for any other version or variant.
            pub fn from_uuid(value: Uuid) -> Result<Self, ValidationError> {
                check_v7($field, value).map(Self)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl TryFrom<Uuid> for $name {
            type Error = ValidationError;

            fn try_from(value: Uuid) -> Result<Self, Self::Error> {
                Self::from_uuid(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                let value = Uuid::try_parse(input).map_err(|_| ValidationError::MalformedId {
                    field: $field,
                    input: excerpt(input),
                })?;
                Self::from_uuid(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

uuid_v7_id!(
    /// Identifies an order (the order aggregate, and the saga and correlation id).
    OrderId,
    "order_id"
);
uuid_v7_id!(
    /// Identifies a payment (the payment aggregate).
    PaymentId,
    "payment_id"
);
uuid_v7_id!(
    /// Identifies a delivery (the delivery aggregate).
    DeliveryId,
    "delivery_id"
);
uuid_v7_id!(
    /// Identifies a customer.
    CustomerId,
    "customer_id"
);
uuid_v7_id!(
    /// Identifies one event; consumers deduplicate on it.
    EventId,
    "event_id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const V4: &str = "550e8400-e29b-41d4-a716-446655440000";
    const V7: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

    #[test]
    fn new_ids_are_v7_and_time_ordered() {
        let first = OrderId::new();
        let second = OrderId::new();
        assert_eq!(first.as_uuid().get_version(), Some(Version::SortRand));
        assert!(first < second, "{first:?} should sort before {second:?}");
        assert_ne!(PaymentId::new().as_uuid(), PaymentId::new().as_uuid());
    }

    #[test]
    fn parses_v7_and_displays_it_back() {
        let id: OrderId = V7.parse().unwrap();
        assert_eq!(id.to_string(), V7);
        assert_eq!(format!("{id:?}"), format!("OrderId({V7})"));
        let upper: CustomerId = V7.to_uppercase().parse().unwrap();
        assert_eq!(upper.to_string(), V7);
    }

    #[test]
    fn refuses_other_versions_naming_the_field() {
        let err = V4.parse::<PaymentId>().unwrap_err();
        assert_eq!(
            err,
            ValidationError::NotUuidV7 {
                field: "payment_id",
                value: Uuid::parse_str(V4).unwrap(),
                version: 4
            }
        );
        assert!(err.to_string().starts_with("payment_id must be a UUID v7"));
        assert!(matches!(
            DeliveryId::try_from(Uuid::nil()),
            Err(ValidationError::NotUuidV7 {
                field: "delivery_id",
                version: 0,
                ..
            })
        ));
        assert!(EventId::try_from(Uuid::max()).is_err());
    }

    #[test]
    fn refuses_v7_version_bits_with_a_non_rfc_variant() {
        let mut bytes = *Uuid::parse_str(V7).unwrap().as_bytes();
        bytes[8] &= 0x3f; // variant bits 00: NCS, not RFC 4122/9562
        let odd = Uuid::from_bytes(bytes);
        assert_eq!(odd.get_version_num(), 7);
        assert!(OrderId::try_from(odd).is_err());
    }

    #[test]
    fn refuses_garbage_naming_the_field() {
        let err = "not-a-uuid".parse::<EventId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "event_id is not a valid UUID: \"not-a-uuid\""
        );
        assert!("".parse::<OrderId>().is_err());
    }

    #[test]
    fn serde_round_trips_and_refuses_non_v7() {
        let id = OrderId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<OrderId>(&json).unwrap(), id);

        let err = serde_json::from_str::<OrderId>(&format!("\"{V4}\"")).unwrap_err();
        assert!(
            err.to_string().contains("order_id must be a UUID v7"),
            "{err}"
        );
        assert!(serde_json::from_str::<OrderId>("\"nope\"").is_err());
        assert!(serde_json::from_str::<OrderId>("42").is_err());
    }

    proptest! {
        #[test]
        fn accepts_exactly_the_v7_rfc_uuids(bytes in any::<[u8; 16]>()) {
            let value = Uuid::from_bytes(bytes);
            let is_v7 = value.get_version_num() == 7 && value.get_variant() == Variant::RFC4122;
            prop_assert_eq!(OrderId::try_from(value).is_ok(), is_v7);
            prop_assert_eq!(value.to_string().parse::<CustomerId>().is_ok(), is_v7);
        }

        #[test]
        fn display_and_parse_round_trip(bytes in any::<[u8; 16]>()) {
            // Force the v7 version and RFC variant bits.
            let mut bytes = bytes;
            bytes[6] = (bytes[6] & 0x0f) | 0x70;
            bytes[8] = (bytes[8] & 0x3f) | 0x80;
            let id = EventId::try_from(Uuid::from_bytes(bytes)).unwrap();
            prop_assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
        }
    }
}
