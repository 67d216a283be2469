//! [`Service`]: the four services of the pipeline, the one name every topic, consumer group and part is
//! derived from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A service of the pipeline. Each owns one aggregate type, publishes that aggregate's events on its events
/// topic and takes requests on its commands topic (see `producers::topics::Topics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Service {
    /// Takes orders, and the saga's last word on each (complete, cancel).
    Orders,
    /// Authorizes, captures, voids and refunds through the payment provider.
    Payments,
    /// Reserves, releases and commits stock.
    Inventory,
    /// Books deliveries with the carrier.
    Delivery,
}

impl Service {
    /// Every service, in the order an order meets them.
    pub const ALL: [Self; 4] = [
        Self::Orders,
        Self::Inventory,
        Self::Payments,
        Self::Delivery,
    ];

    /// The service's name, as in its topics (`payments.events`) and on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Payments => "payments",
            Self::Inventory => "inventory",
            Self::Delivery => "delivery",
        }
    }

    /// The name of the aggregate type the service owns ([`Aggregate::NAME`](crate::Aggregate::NAME)), as
    /// stored in the event store.
    #[must_use]
    pub const fn aggregate(self) -> &'static str {
        match self {
            Self::Orders => "order",
            Self::Payments => "payment",
            Self::Inventory => "inventory",
            Self::Delivery => "delivery",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a service's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service {0:?}: expected one of orders, payments, inventory, delivery")]
pub struct UnknownService(pub String);

impl FromStr for Service {
    type Err = UnknownService;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| UnknownService(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_stranger_is_refused() {
        for service in Service::ALL {
            assert_eq!(service.name().parse::<Service>(), Ok(service));
        }
        let refused = "shipping".parse::<Service>().unwrap_err();
        assert!(refused.to_string().contains("\"shipping\""), "{refused}");
    }
}
