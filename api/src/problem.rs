//! Errors as RFC 9457 problem details (`application/problem+json`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field that is wrong, by its path in the body (`lines[1].quantity`) and as a JSON pointer
/// (`/lines/1/quantity`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub pointer: String,
    pub detail: String,
}

impl FieldProblem {
    /// A problem with `field` (dotted path with `[n]` indices), saying `detail`.
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            pointer: pointer_of(&field),
            field,
            detail: detail.into(),
        }
    }
}

/// `lines[1].quantity` → `/lines/1/quantity`.
fn pointer_of(field: &str) -> String {
    let mut pointer = String::with_capacity(field.len() + 1);
    for part in field.split(['.', '[']) {
        pointer.push('/');
        pointer.push_str(part.trim_end_matches(']'));
    }
    pointer
}

/// A problem: its type, title and status, what happened, and the fields at fault.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// Seconds to wait before trying again (also the `Retry-After` header).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    fn new(kind: &'static str, title: &'static str, status: StatusCode, detail: String) -> Self {
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed (not JSON, a header missing or bad).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            "/problems/bad-request",
            "The request is malformed",
            StatusCode::BAD_REQUEST,
            detail.into(),
        )
    }

    /// 404: no such order.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            "/problems/not-found",
            "No such order",
            StatusCode::NOT_FOUND,
            detail.into(),
        )
    }

    /// 413: the body is larger than `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            "/problems/body-too-large",
            "The body is too large",
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    }

    /// 415: the body is not `application/json`.
    pub fn unsupported_media_type(got: Option<&str>) -> Self {
        Self::new(
            "/problems/unsupported-media-type",
            "The body must be JSON",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            match got {
                Some(got) => format!("Content-Type is {got:?}; send application/json"),
                None => "no Content-Type; send application/json".to_owned(),
            },
        )
    }

    /// 422: the order is not valid; `errors` names each field at fault.
    pub fn invalid_order(errors: Vec<FieldProblem>) -> Self {
        let mut problem = Self::new(
            "/problems/invalid-order",
            "The order is not valid",
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} field{} at fault: {}",
                errors.len(),
                if errors.len() == 1 { " is" } else { "s are" },
                errors
                    .iter()
                    .map(|e| e.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        problem.errors = errors;
        problem
    }

    /// 422: the Idempotency-Key placed another order.
    pub fn key_reused(detail: impl Into<String>) -> Self {
        Self::new(
            "/problems/idempotency-key-reused",
            "The Idempotency-Key was used for another order",
            StatusCode::UNPROCESSABLE_ENTITY,
            detail.into(),
        )
    }

    /// 429: the pipeline's backlog is past its bound; try again after `retry_after` seconds.
    pub fn busy(backlog: i64, bound: i64, retry_after: u64) -> Self {
        let mut problem = Self::new(
            "/problems/busy",
            "Too many orders in flight",
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{backlog} orders are in flight, the bound is {bound}; nothing was written, try again in \
                 {retry_after} s"
            ),
        );
        problem.retry_after = Some(retry_after);
        problem
    }

    /// 503: the database did not answer; nothing is known to be written.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(
            "/problems/unavailable",
            "The order store is unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            detail.into(),
        );
        problem.retry_after = Some(1);
        problem
    }

    /// 500: a bug or an unexpected failure.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            "/problems/internal",
            "Internal error",
            StatusCode::INTERNAL_SERVER_ERROR,
            detail.into(),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_path_becomes_a_json_pointer() {
        assert_eq!(pointer_of("lines[1].quantity"), "/lines/1/quantity");
        assert_eq!(pointer_of("customer_id"), "/customer_id");
        assert_eq!(
            pointer_of("delivery_address.postal_code"),
            "/delivery_address/postal_code"
        );
    }
}
