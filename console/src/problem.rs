//! Errors as `application/problem+json` (RFC 9457): a status, a title, and a detail naming the problem.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An answer that is not a success.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(skip)]
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
}

impl Problem {
    /// 400: the request names nothing the console can look up.
    #[must_use]
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            title: "bad request",
            detail: detail.into(),
        }
    }

    /// 404: nothing by that name.
    #[must_use]
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            title: "not found",
            detail: detail.into(),
        }
    }

    /// 409: what the request acts on is not in a state that allows it.
    #[must_use]
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            title: "conflict",
            detail: detail.into(),
        }
    }

    /// 503: the database or the broker did not answer; the detail says which, without its address.
    #[must_use]
    pub fn unavailable(error: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %error, "the console could not read");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "unavailable",
            detail: "the database or the broker did not answer; see the console's log".into(),
        }
    }
}

/// The JSON body of a request, or 400 naming the body `expected` and what was wrong with this one.
pub(crate) fn json_body<T>(
    body: Result<axum::Json<T>, axum::extract::rejection::JsonRejection>,
    expected: &str,
) -> Result<T, Problem> {
    body.map(|axum::Json(value)| value)
        .map_err(|e| Problem::bad_request(format!("expected {expected}: {}", e.body_text())))
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            title: &'a str,
            status: u16,
            detail: &'a str,
        }
        let body = Body {
            kind: "about:blank",
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
        };
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response()
    }
}

/// Any path the console does not serve.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("the console serves nothing at {}", uri.path()))
}
