//! The payments service's client of the provider's HTTP API.

use std::time::Duration;

use domain::{Money, OrderId};
use provider::{Accepted, Amount, IDEMPOTENCY_KEY, Operation, OperationResult, PaymentView};
use reqwest::StatusCode;

use crate::ServiceError;

/// What the provider answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Accepted; the result comes later, by notification.
    Pending { reference: String },
    /// A repeat of a key the provider decided before: its result.
    Decided(OperationResult),
}

/// Calls the provider's API.
#[derive(Clone, Debug)]
pub struct ProviderClient {
    base: String,
    http: reqwest::Client,
}

impl ProviderClient {
    /// A client of the provider at `base_url` whose calls give up after `timeout`.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] when the HTTP client cannot be built.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, ServiceError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ServiceError::invalid("provider_url", e))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// Asks the provider to do `operation` of `amount` for `order_id`, idempotently on `key`.
    ///
    /// # Errors
    /// [`ServiceError::ProviderTimeout`] when no answer came (calling again with the same key is safe);
    /// [`ServiceError::ProviderRefused`] when the provider refused the request itself.
    pub async fn call(
        &self,
        operation: Operation,
        order_id: OrderId,
        amount: Money,
        key: &str,
    ) -> Result<Answer, ServiceError> {
        let unanswered = |detail: String| ServiceError::ProviderTimeout {
            operation: operation.name(),
            order_id: order_id.to_string(),
            detail,
        };
        let url = format!("{}/v1/payments/{order_id}/{operation}", self.base);
        let body = Amount {
            amount_minor: amount.minor(),
            currency: amount.currency().code().to_owned(),
        };
        let response = self
            .http
            .post(&url)
            .header(IDEMPOTENCY_KEY, key)
            .json(&body)
            .send()
            .await
            .map_err(|e| unanswered(format!("{url}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| unanswered(format!("reading the answer: {e}")))?;
        let unreadable =
            |e: serde_json::Error| unanswered(format!("unreadable answer {text:?}: {e}"));
        match status {
            StatusCode::ACCEPTED => {
                let accepted: Accepted = serde_json::from_str(&text).map_err(unreadable)?;
                Ok(Answer::Pending {
                    reference: accepted.reference,
                })
            }
            StatusCode::OK => Ok(Answer::Decided(
                serde_json::from_str(&text).map_err(unreadable)?,
            )),
            status if status.is_client_error() => Err(ServiceError::ProviderRefused {
                operation: operation.name(),
                order_id: order_id.to_string(),
                detail: format!("{status}: {text}"),
            }),
            status => Err(unanswered(format!("{status}: {text}"))),
        }
    }
}

impl ProviderClient {
    /// The provider's view of the payment of `order_id`; `None` when it was never asked about it.
    ///
    /// # Errors
    /// [`ServiceError::ProviderTimeout`] when no answer came.
    pub async fn payment(&self, order_id: OrderId) -> Result<Option<PaymentView>, ServiceError> {
        let unanswered = |detail: String| ServiceError::ProviderTimeout {
            operation: "query",
            order_id: order_id.to_string(),
            detail,
        };
        let url = format!("{}/v1/payments/{order_id}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| unanswered(format!("{url}: {e}")))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK => {
                Ok(Some(response.json().await.map_err(|e| {
                    unanswered(format!("unreadable answer: {e}"))
                })?))
            }
            status => Err(unanswered(format!("{url} answered {status}"))),
        }
    }
}
