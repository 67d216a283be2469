//! Topic names, made in one place.
//!
//! Domain events go to `<service>.events` keyed by aggregate id, saga commands to `<service>.commands` keyed by
//! order id, dead letters to `<topic>.dlq`, replicated topics to `<region>.<topic>` (MirrorMaker 2 naming).
//! A [`Topics`] value may carry a prefix, so tests and side-by-side environments never share topics.

/// Topic names of one environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Names with `prefix` in front of each (empty for production names).
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The topic of an aggregate type's events, by the aggregate's name (`"order"`, `"payment"`,
    /// `"inventory"`, `"delivery"`); another name maps to `<name>.events`.
    pub fn events(&self, aggregate: &str) -> String {
        let service = match aggregate {
            "order" => "orders",
            "payment" => "payments",
            other => other,
        };
        format!("{}{service}.events", self.prefix)
    }

    /// The topic of commands to a service (`"payments"`, `"inventory"`, `"delivery"`).
    pub fn commands(&self, service: &str) -> String {
        format!("{}{service}.commands", self.prefix)
    }

    /// The dead-letter topic of `topic`.
    pub fn dead_letters(topic: &str) -> String {
        format!("{topic}.dlq")
    }

    /// The delayed-retry topic of `topic`.
    pub fn retries(topic: &str) -> String {
        format!("{topic}.retry")
    }

    /// The name of `topic` replicated from `region`.
    pub fn replicated(region: &str, topic: &str) -> String {
        format!("{region}.{topic}")
    }
}

#[cfg(test)]
mod tests {
    use super::Topics;

    #[test]
    fn names_follow_the_conventions() {
        let topics = Topics::default();
        assert_eq!(topics.events("order"), "orders.events");
        assert_eq!(topics.events("payment"), "payments.events");
        assert_eq!(topics.events("inventory"), "inventory.events");
        assert_eq!(topics.events("delivery"), "delivery.events");
        assert_eq!(topics.commands("payments"), "payments.commands");
        assert_eq!(Topics::dead_letters("orders.events"), "orders.events.dlq");
        assert_eq!(Topics::retries("orders.events"), "orders.events.retry");
        assert_eq!(
            Topics::replicated("eu-west", "orders.events"),
            "eu-west.orders.events"
        );
        assert_eq!(
            Topics::with_prefix("t1-").events("order"),
            "t1-orders.events"
        );
    }
}
