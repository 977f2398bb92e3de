//! [`DeviceTokens`] as HS256 JSON Web Tokens under their own key.
//!
//! A device token must never pass for an access token, nor an access token for a device
//! token. Two things keep them apart: each is signed with its own key (the device key is
//! derived from the server's token secret with HKDF-SHA256, so there is still only one
//! secret to configure), and each names its own audience.

use chat_domain::UserId;
use chat_domain::ports::{DeviceClaims, DeviceTokens};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::JwtIssuer;
use crate::tokens::{ISSUER, strict_validation};

const AUDIENCE: &str = "chatd-device";

/// The HKDF `info` naming what the derived key is for; a new purpose gets a new label.
const KEY_LABEL: &[u8] = b"chatd device token signing key v1";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// The user's token generation at issue time; see `User::token_generation`.
    #[serde(rename = "gen")]
    generation: i64,
    /// The device id: the key of this device's own failed-login budget.
    jti: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
}

/// Signs and checks device tokens: HS256 only, `iss`, `aud`, `exp`, `iat`, `sub` required.
#[derive(Clone)]
pub struct JwtDeviceTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl JwtDeviceTokens {
    /// `secret` is the access-token secret (at least 32 bytes); the device key is derived
    /// from it. `ttl` is how long a device stays trusted after its last successful login.
    pub fn new(secret: &[u8], ttl: Duration) -> Result<Self, String> {
        if secret.len() < JwtIssuer::MIN_SECRET_BYTES {
            return Err(format!(
                "the token secret must be at least {} bytes",
                JwtIssuer::MIN_SECRET_BYTES
            ));
        }
        if ttl <= Duration::zero() {
            return Err("the device token lifetime must be positive".into());
        }
        let mut key = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(None, secret)
            .expand(KEY_LABEL, &mut key)
            .map_err(|e| format!("deriving the device token key: {e}"))?;
        let validation = strict_validation(AUDIENCE);
        Ok(Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            ttl,
        })
    }
}

impl DeviceTokens for JwtDeviceTokens {
    fn issue(&self, user: UserId, generation: i64, now: DateTime<Utc>) -> Result<String, String> {
        let claims = Claims {
            sub: user.to_string(),
            generation,
            jti: Uuid::new_v4().simple().to_string(),
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| e.to_string())
    }

    fn verify(&self, token: &str) -> Result<DeviceClaims, String> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| e.to_string())?
            .claims;
        Ok(DeviceClaims {
            user_id: claims.sub.parse().map_err(|_| "sub is not a user id")?,
            generation: claims.generation,
            device_id: claims.jti,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JwtConfig;
    use chat_domain::ports::TokenIssuer;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn devices(secret: &[u8]) -> JwtDeviceTokens {
        JwtDeviceTokens::new(secret, Duration::days(30)).unwrap()
    }

    fn access_tokens() -> JwtIssuer {
        JwtIssuer::new(JwtConfig {
            secret: SECRET.to_vec(),
            ttl: Duration::hours(1),
        })
        .unwrap()
    }

    #[test]
    fn a_device_token_verifies_to_its_user_with_a_device_id_of_its_own() {
        let devices = devices(SECRET);
        let user = UserId::new();
        let first = devices
            .verify(&devices.issue(user, 3, Utc::now()).unwrap())
            .unwrap();
        let second = devices
            .verify(&devices.issue(user, 3, Utc::now()).unwrap())
            .unwrap();
        assert_eq!((first.user_id, first.generation), (user, 3));
        assert_ne!(first.device_id, second.device_id);
    }

    #[test]
    fn device_tokens_and_access_tokens_never_pass_for_each_other() {
        let user = UserId::new();
        let access = access_tokens().issue(user, 0, Utc::now()).unwrap();
        assert!(devices(SECRET).verify(&access.token).is_err());
        let device = devices(SECRET).issue(user, 0, Utc::now()).unwrap();
        assert!(access_tokens().verify(&device).is_err());
    }

    #[test]
    fn a_device_token_from_another_secret_a_tampered_one_or_an_expired_one_is_refused() {
        let devices = devices(SECRET);
        let user = UserId::new();
        let other = self::devices(b"another secret that is long enough!!")
            .issue(user, 0, Utc::now())
            .unwrap();
        assert!(devices.verify(&other).is_err());
        let expired = devices
            .issue(user, 0, Utc::now() - Duration::days(31))
            .unwrap();
        assert!(devices.verify(&expired).is_err());
        let token = devices.issue(user, 0, Utc::now()).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = Claims {
            sub: UserId::new().to_string(),
            generation: 0,
            jti: "x".into(),
            iat: Utc::now().timestamp(),
            exp: Utc::now().timestamp() + 3600,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&forged).unwrap());
        parts[1] = &payload;
        assert!(devices.verify(&parts.join(".")).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtDeviceTokens::new(b"short", Duration::days(1)).is_err());
    }
}
