//! Topic names, made in one place.
//!
//! Domain events go to `<service>.events` keyed by aggregate id, saga commands to `<service>.commands` keyed by
//! order id, dead letters to `<topic>.dlq`, replicated topics to `<region>.<topic>` (MirrorMaker 2 naming).
//! A [`Topics`] value may carry a prefix, so tests and side-by-side environments never share topics.

pub use domain::Service;

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

    /// The prefix in front of every name (empty for production names).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The topic of `service`'s events (`orders.events`), keyed by aggregate id.
    pub fn events(&self, service: Service) -> String {
        format!("{}{service}.events", self.prefix)
    }

    /// The topic of requests to `service` (`payments.commands`), keyed by order id.
    pub fn commands(&self, service: Service) -> String {
        format!("{}{service}.commands", self.prefix)
    }

    /// Every events and commands topic, in [`Service::ALL`] order.
    pub fn all(&self) -> Vec<String> {
        Service::ALL
            .into_iter()
            .flat_map(|service| [self.events(service), self.commands(service)])
            .collect()
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
    use super::{Service, Topics};

    #[test]
    fn names_follow_the_conventions() {
        let topics = Topics::default();
        assert_eq!(topics.events(Service::Orders), "orders.events");
        assert_eq!(topics.events(Service::Payments), "payments.events");
        assert_eq!(topics.events(Service::Inventory), "inventory.events");
        assert_eq!(topics.events(Service::Delivery), "delivery.events");
        assert_eq!(topics.commands(Service::Payments), "payments.commands");
        assert_eq!(topics.all().len(), 8);
        assert_eq!(Topics::dead_letters("orders.events"), "orders.events.dlq");
        assert_eq!(Topics::retries("orders.events"), "orders.events.retry");
        assert_eq!(
            Topics::replicated("eu-west", "orders.events"),
            "eu-west.orders.events"
        );
        assert_eq!(
            Topics::with_prefix("t1-").events(Service::Orders),
            "t1-orders.events"
        );
    }
}
