//! What a registry request can fail with, and how each failure is told to a Confluent client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Every way a registry request ends without its answer.
///
/// All variants but [`RegistryError::Store`] are rejections: the request was wrong or named something that
/// is not there, and repeating it gives the same answer. [`RegistryError::Store`] is a failure of the
/// database; the same request may succeed later.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The body is not JSON, or not the JSON object the endpoint takes. HTTP 400, error code 400.
    #[error("{0}")]
    BadRequest(String),
    /// No live version under this subject (40401).
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// The subject has no such version (40402).
    #[error("Version {version} not found.")]
    VersionNotFound { subject: String, version: String },
    /// No schema with this id, or the schema is not registered under the subject (40403).
    #[error("{0}")]
    SchemaNotFound(String),
    /// A hard delete of a subject that still has live versions (40405).
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// A soft delete of a subject whose versions are all soft-deleted already (40404).
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// A soft delete of a version that is soft-deleted already (40406).
    #[error(
        "Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted { subject: String, version: i32 },
    /// A hard delete of a version that was not soft-deleted first (40407).
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted { subject: String, version: i32 },
    /// `GET /config/{subject}` for a subject without a level of its own (40408).
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    /// The schema does not parse, or uses what this registry does not support (42201).
    #[error("{0}")]
    InvalidSchema(String),
    /// A subject name with a control character, or longer than [`super::MAX_SUBJECT_BYTES`] (42208).
    #[error("The specified subject {shown} is not valid: {reason}")]
    InvalidSubject { shown: String, reason: String },
    /// A version that is neither a positive 32-bit integer, `latest` nor -1 (42202).
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// A compatibility level that is not one of the seven (42203).
    #[error(
        "Invalid compatibility level '{0}'. Valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL and FULL_TRANSITIVE"
    )]
    InvalidCompatibilityLevel(String),
    /// The schema breaks the subject's compatibility level (409).
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
        .messages.join(", ")
    )]
    Incompatible {
        subject: String,
        messages: Vec<String>,
    },
    /// A delete or a configuration change without the admin token the registry was started with (40101).
    #[error(
        "Unauthorized: this request needs the registry's admin token (Authorization: Bearer <token>)"
    )]
    Unauthorized,
    /// A delete of a subject or a version on a registry started with `--no-deletes` (40301).
    #[error("Deletes are disabled on this registry (orderflow registry --no-deletes)")]
    DeletesDisabled,
    /// The request did not finish within the registry's request timeout (50301, HTTP 503 so that clients
    /// retry it; Confluent's 50002 is a 500).
    #[error("The request did not finish within {} s; retry later", .0.as_secs_f64())]
    TimedOut(std::time::Duration),
    /// As many requests as the registry handles at once are under way (50302, HTTP 503).
    #[error("The registry is busy (it handles {0} at a time); retry later")]
    Busy(usize),
    /// A route that does not exist (404).
    #[error("HTTP 404 Not Found")]
    NotFound,
    /// A route that exists, with another method (405).
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    /// A request body whose content type is not JSON (415).
    #[error("HTTP 415 Unsupported Media Type: {0}")]
    UnsupportedMediaType(String),
    /// The database failed (50001). Logged with its cause; the client gets a generic message.
    #[error("Error in the backend data store")]
    Store(#[from] sqlx::Error),
}

impl RegistryError {
    /// Confluent's `error_code`: the HTTP status followed by a detail digit or two.
    pub fn error_code(&self) -> u32 {
        match self {
            Self::BadRequest(_) => 400,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedMediaType(_) => 415,
            Self::SubjectNotFound(_) => 40401,
            Self::VersionNotFound { .. } => 40402,
            Self::SchemaNotFound(_) => 40403,
            Self::SubjectSoftDeleted(_) => 40404,
            Self::SubjectNotSoftDeleted(_) => 40405,
            Self::VersionSoftDeleted { .. } => 40406,
            Self::VersionNotSoftDeleted { .. } => 40407,
            Self::SubjectConfigNotFound(_) => 40408,
            Self::Incompatible { .. } => 409,
            Self::InvalidSchema(_) => 42201,
            Self::InvalidVersion(_) => 42202,
            Self::InvalidCompatibilityLevel(_) => 42203,
            Self::InvalidSubject { .. } => 42208,
            Self::Unauthorized => 40101,
            Self::DeletesDisabled => 40301,
            Self::Store(_) => 50001,
            Self::TimedOut(_) => 50301,
            Self::Busy(_) => 50302,
        }
    }

    /// The HTTP status: the first three digits of the error code.
    pub fn status(&self) -> StatusCode {
        let code = self.error_code();
        let status = if code >= 1000 { code / 100 } else { code };
        StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        if let Self::Store(cause) = &self {
            tracing::error!(error = %cause, "schema registry: database error");
        }
        let body = serde_json::json!({
            "error_code": self.error_code(),
            "message": self.to_string(),
        });
        let mut response = super::http::json_response(self.status(), &body);
        if let Self::Unauthorized = self {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_the_first_three_digits_of_the_code() {
        assert_eq!(
            RegistryError::SubjectNotFound("s".into()).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            RegistryError::InvalidVersion("x".into()).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let incompatible = RegistryError::Incompatible {
            subject: "s".into(),
            messages: vec![],
        };
        assert_eq!(incompatible.status(), StatusCode::CONFLICT);
        assert_eq!(incompatible.error_code(), 409);
        assert_eq!(
            RegistryError::Store(sqlx::Error::PoolTimedOut).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            RegistryError::BadRequest("x".into()).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
