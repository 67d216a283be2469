//! Who may act: the console's actions (POST) need its access token, and are refused when they come from
//! another site. Reading needs the token too when the console serves an address other than loopback
//! ([`ConsoleConfig::reads_need_token`](crate::ConsoleConfig::reads_need_token)).
//!
//! The token comes as `Authorization: Bearer <token>` (the JSON API) or as the cookie the login form sets
//! (`HttpOnly`, `SameSite=Strict`, so a browser never sends it with a request another site makes). On top of
//! that, a request a browser marks as cross-site (`Sec-Fetch-Site`) or whose `Origin` is not the console's own
//! is refused before the token is looked at. Without a token configured the console acts on nothing.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use crate::{Console, Problem};

/// The cookie the login form sets.
pub(crate) const COOKIE: &str = "orderflow_console_token";

/// Someone the console lets act: the request carried the access token and came from the console's own site
/// ([`authorize`]). Only an extractor makes one, so a function that takes it cannot act for anyone else.
pub(crate) struct Operator {
    actor: String,
}

impl Operator {
    /// Who acts, for the audit trail: `console@<client address>` (the token is shared, so the address is
    /// what tells one operator from another).
    pub(crate) fn actor(&self) -> &str {
        &self.actor
    }
}

impl FromRequestParts<Console> for Operator {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Problem> {
        authorize(&parts.headers, console.config.token.as_deref())?;
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(
                || "unknown".to_owned(),
                |ConnectInfo(peer)| peer.ip().to_string(),
            );
        Ok(Self {
            actor: format!("console@{client}"),
        })
    }
}

/// Checks that the request in `headers` may act, given the console's `token`.
///
/// # Errors
/// 403 without a configured token or for a cross-site request; 401 without the right token.
pub(crate) fn authorize(headers: &HeaderMap, token: Option<&str>) -> Result<(), Problem> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(Problem {
            status: StatusCode::FORBIDDEN,
            title: "forbidden",
            detail:
                "the console acts only with an access token: start it with CONSOLE_TOKEN (--token)"
                    .into(),
        });
    };
    same_origin(headers)?;
    authenticate(headers, token, "this action")
}

/// Checks that the request in `headers` carries `token`, as a bearer or as the login cookie.
///
/// # Errors
/// 401 naming `what` needs the token, and how to give it.
pub(crate) fn authenticate(headers: &HeaderMap, token: &str, what: &str) -> Result<(), Problem> {
    let given = bearer(headers).or_else(|| cookie(headers));
    if !token.is_empty() && given.is_some_and(|given| equal(given.as_bytes(), token.as_bytes())) {
        Ok(())
    } else {
        Err(Problem {
            status: StatusCode::UNAUTHORIZED,
            title: "unauthorized",
            detail: format!(
                "{what} needs the console's access token (Authorization: Bearer, or log in at /login)"
            ),
        })
    }
}

/// Refuses what a browser says another site sent.
fn same_origin(headers: &HeaderMap) -> Result<(), Problem> {
    let cross = |detail: String| Problem {
        status: StatusCode::FORBIDDEN,
        title: "forbidden",
        detail,
    };
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site").filter(|s| !matches!(*s, "same-origin" | "none")) {
        return Err(cross(format!(
            "refused: a {site} request may not act on the console"
        )));
    }
    if let (Some(origin), Some(host)) = (value("origin"), value("host")) {
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if own != Some(host) {
            return Err(cross(format!(
                "refused: a request from {origin} may not act on the console at {host}"
            )));
        }
    }
    Ok(())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Compares in time that does not depend on where the two differ.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The pairs of an `application/x-www-form-urlencoded` body, keys repeated as sent.
pub(crate) fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match escaped {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_token_is_needed_and_must_be_the_right_one() {
        let ok = headers(&[("authorization", "Bearer s3cret")]);
        assert!(authorize(&ok, Some("s3cret")).is_ok());
        let cookie = headers(&[("cookie", "a=b; orderflow_console_token=s3cret")]);
        assert!(authorize(&cookie, Some("s3cret")).is_ok());
        assert_eq!(
            authorize(
                &headers(&[("authorization", "Bearer nope")]),
                Some("s3cret")
            )
            .unwrap_err()
            .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            authorize(&HeaderMap::new(), Some("s3cret"))
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            authorize(&ok, None).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn a_cross_site_request_is_refused_even_with_the_token() {
        for cross in [
            headers(&[
                ("authorization", "Bearer s3cret"),
                ("sec-fetch-site", "cross-site"),
            ]),
            headers(&[
                ("authorization", "Bearer s3cret"),
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:8090"),
            ]),
        ] {
            assert_eq!(
                authorize(&cross, Some("s3cret")).unwrap_err().status,
                StatusCode::FORBIDDEN
            );
        }
        let own = headers(&[
            ("authorization", "Bearer s3cret"),
            ("origin", "http://127.0.0.1:8090"),
            ("host", "127.0.0.1:8090"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(authorize(&own, Some("s3cret")).is_ok());
    }

    #[test]
    fn a_form_keeps_its_repeated_fields() {
        assert_eq!(
            form_pairs("letter=0%2F3&letter=1%2F7&token=a+b"),
            vec![
                ("letter".to_owned(), "0/3".to_owned()),
                ("letter".to_owned(), "1/7".to_owned()),
                ("token".to_owned(), "a b".to_owned()),
            ]
        );
    }
}
