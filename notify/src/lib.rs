//! Max-effort notifications, with retry and acknowledgement.
//!
//! A notification is a row written in the sender's own transaction ([`notify`], [`notify_kind`]), so it
//! exists exactly when the change it tells of committed. A [`Notifier`] POSTs it as JSON, signed with the
//! subscriber's secret ([`signature`]), and tries again on a [`Schedule`] with jitter until the receiver
//! answers 2xx; after the last attempt it is given up, counted, and left for reconciliation (operators can
//! [`retry`] it). Several workers may run at once.
//!
//! Receivers see each notification at least once: the acknowledgement can be lost after the receiver
//! applied it. They apply one [`signature::ID_HEADER`] once, and check [`signature::verify`] before
//! anything.

pub mod schedule;
pub mod signature;
mod store;
mod worker;

pub use schedule::Schedule;
pub use store::{
    Counts, Notification, Subscriber, counts, list, notify, notify_kind, resend_given_up, retry,
    show, subscribe,
};
pub use worker::{KIND_HEADER, Notifier, NotifierConfig, NotifierStats, Scope};

/// What can go wrong with notifications.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no subscriber is named {0}")]
    UnknownSubscriber(String),
    #[error("no notification has the id {0}")]
    NotFound(uuid::Uuid),
    #[error("notification {0} was delivered already")]
    AlreadyDelivered(uuid::Uuid),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}
