//! The signature of a notification: HMAC-SHA256 with the subscriber's secret over `timestamp.body`, sent as
//! `Orderflow-Signature: t=<unix seconds>,v1=<hex>`. A receiver checks it before it applies anything, and
//! refuses a timestamp too far from its clock, so a captured request cannot be replayed days later.

use std::time::Duration;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "orderflow-signature";
/// The header carrying the notification's id: a receiver applies one id once.
pub const ID_HEADER: &str = "orderflow-notification-id";
/// How far a signature's timestamp may be from the receiver's clock by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("the {SIGNATURE_HEADER} header is missing")]
    Missing,
    #[error("the {SIGNATURE_HEADER} header is not t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("the signature's timestamp is {0} s away from now, more than allowed")]
    Stale(u64),
    #[error("the signature does not match the body")]
    Mismatch,
}

/// The header value signing `body` at `timestamp` (unix seconds) with `secret`.
#[must_use]
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex(&digest))
}

/// Checks `header` (the signature header's value, if any) against `body` and `secret` at unix time `now`.
///
/// # Errors
/// [`Refused`]: missing, malformed, outside `tolerance` of `now`, or not matching.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), Refused> {
    let header = header.ok_or(Refused::Missing)?;
    let (timestamp, signature) = parse(header).ok_or(Refused::Malformed)?;
    let skew = now.abs_diff(timestamp);
    if skew > tolerance.as_secs() {
        return Err(Refused::Stale(skew));
    }
    // `verify_slice` compares in constant time.
    mac(secret, timestamp, body)
        .verify_slice(&signature)
        .map_err(|_| Refused::Mismatch)
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn parse(header: &str) -> Option<(i64, Vec<u8>)> {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=')? {
            ("t", value) => timestamp = Some(value.parse().ok()?),
            ("v1", value) => signature = Some(unhex(value)?),
            _ => {}
        }
    }
    Some((timestamp?, signature?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec-test";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_body_verifies() {
        let header = sign(SECRET, NOW, b"{\"a\":1}");
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(
            verify(
                SECRET,
                Some(&header),
                b"{\"a\":1}",
                NOW + 10,
                DEFAULT_TOLERANCE
            ),
            Ok(())
        );
    }

    #[test]
    fn another_body_secret_or_time_is_refused() {
        let header = sign(SECRET, NOW, b"{\"a\":1}");
        let check = |secret: &[u8], body: &[u8], now| {
            verify(secret, Some(&header), body, now, DEFAULT_TOLERANCE)
        };
        assert_eq!(check(SECRET, b"{\"a\":2}", NOW), Err(Refused::Mismatch));
        assert_eq!(check(b"other", b"{\"a\":1}", NOW), Err(Refused::Mismatch));
        assert_eq!(
            check(SECRET, b"{\"a\":1}", NOW + 301),
            Err(Refused::Stale(301))
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let verify = |header| verify(SECRET, header, b"", NOW, DEFAULT_TOLERANCE);
        assert_eq!(verify(None), Err(Refused::Missing));
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=0g", "t=1,v1=abc"] {
            assert_eq!(verify(Some(bad)), Err(Refused::Malformed), "{bad}");
        }
    }
}
