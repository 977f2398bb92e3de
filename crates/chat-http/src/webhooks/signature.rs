//! The `Chatd-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
//! keyed with the endpoint's secret, as Stripe signs its webhooks. The time is inside what
//! is signed, so a receiver that refuses old times refuses replays too.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header's name.
pub const SIGNATURE_HEADER: &str = "Chatd-Signature";

/// The header's value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Whether `header` is a valid signature of `body` with `secret`, made at most
/// `tolerance_secs` away from `now` (Unix seconds). Compares in constant time. What a
/// receiver does; here for the tests and as the reference for docs/webhooks.md.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now - timestamp).abs() > tolerance_secs {
        return false;
    }
    signatures.iter().any(|signature| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(signature).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_matches_the_published_example() {
        // The example of docs/webhooks.md: any HMAC-SHA256 implementation gives this.
        assert_eq!(
            sign("whsec_test_0123456789", 1_700_000_000, br#"{"id":"x"}"#),
            format!(
                "t=1700000000,v1={}",
                "f082be31b5a9fa327fe76cfdc7d206473fbc44da88a7328f2e70551df2f5e72f"
            )
        );
    }

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_a_recent_time() {
        let header = sign("secret-one-0123456", 1000, b"body");
        assert!(verify("secret-one-0123456", &header, b"body", 1010, 300));
        assert!(!verify("secret-two-0123456", &header, b"body", 1010, 300));
        assert!(!verify("secret-one-0123456", &header, b"bodY", 1010, 300));
        assert!(!verify("secret-one-0123456", &header, b"body", 2000, 300));
        assert!(!verify("secret-one-0123456", "v1=00", b"body", 1000, 300));
    }
}
