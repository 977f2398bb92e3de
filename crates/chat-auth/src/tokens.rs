//! [`TokenIssuer`] with HS256 JSON Web Tokens.

use chat_domain::ports::{AccessToken, TokenClaims, TokenError, TokenIssuer};
use chat_domain::{SessionId, UserId};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What every token is issued by and for; a token minted for another service with the same
/// secret is refused.
pub(crate) const ISSUER: &str = "chatd";
const AUDIENCE: &str = "chatd-api";

/// What every token this server signs must satisfy: HS256 only (the algorithm comes from here,
/// never from the token), our issuer, the given audience, and every standard claim present,
/// with no leeway on expiry.
pub(crate) fn strict_validation(audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
    validation
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// The user's token generation at issue time; see `User::token_generation`.
    #[serde(rename = "gen", default)]
    generation: i64,
    iat: i64,
    exp: i64,
    jti: String,
    iss: String,
    aud: String,
    /// The login session the token was issued in; absent from tokens of before sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

#[derive(Clone)]
pub struct JwtConfig {
    /// The HMAC secret: at least 32 bytes.
    pub secret: Vec<u8>,
    pub ttl: Duration,
}

/// Signs and checks HS256 access tokens. Only HS256 is accepted: a token whose header
/// names another algorithm (`none`, RS256, HS512, ...) is refused before any key is used,
/// and key-locating header fields (`jku`, `x5u`, `jwk`, `kid`) are ignored.
#[derive(Clone)]
pub struct JwtIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl JwtIssuer {
    pub const MIN_SECRET_BYTES: usize = 32;

    pub fn new(config: JwtConfig) -> Result<Self, String> {
        if config.secret.len() < Self::MIN_SECRET_BYTES {
            return Err(format!(
                "the token secret must be at least {} bytes",
                Self::MIN_SECRET_BYTES
            ));
        }
        if config.ttl <= Duration::zero() {
            return Err("the token lifetime must be positive".into());
        }
        let validation = strict_validation(AUDIENCE);
        Ok(Self {
            encoding: EncodingKey::from_secret(&config.secret),
            decoding: DecodingKey::from_secret(&config.secret),
            validation,
            ttl: config.ttl,
        })
    }
}

impl JwtIssuer {
    fn sign(
        &self,
        user: UserId,
        generation: i64,
        session: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<AccessToken, String> {
        let claims = Claims {
            sub: user.to_string(),
            generation,
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
            jti: Uuid::new_v4().simple().to_string(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sid: session.map(|s| s.as_uuid().simple().to_string()),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())?;
        Ok(AccessToken {
            token,
            expires_in: self.ttl,
        })
    }
}

impl TokenIssuer for JwtIssuer {
    fn issue(
        &self,
        user: UserId,
        generation: i64,
        now: DateTime<Utc>,
    ) -> Result<AccessToken, String> {
        self.sign(user, generation, None, now)
    }

    fn issue_in_session(
        &self,
        user: UserId,
        generation: i64,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<AccessToken, String> {
        self.sign(user, generation, Some(session), now)
    }

    fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        // `decode` checks the signature before the claims, so only a genuine token can be
        // reported expired.
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid(e.to_string()),
                }
            })?;
        let claims = data.claims;
        let invalid = |why: &str| TokenError::Invalid(why.to_owned());
        let at = |secs| {
            DateTime::from_timestamp(secs, 0).ok_or_else(|| invalid("timestamp out of range"))
        };
        Ok(TokenClaims {
            user_id: claims
                .sub
                .parse()
                .map_err(|_| invalid("sub is not a user id"))?,
            generation: claims.generation,
            token_id: claims.jti,
            issued_at: at(claims.iat)?,
            expires_at: at(claims.exp)?,
            session_id: claims
                .sid
                .map(|sid| sid.parse().map_err(|_| invalid("sid is not a session id")))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(secret: &[u8]) -> JwtIssuer {
        JwtIssuer::new(JwtConfig {
            secret: secret.to_vec(),
            ttl: Duration::hours(1),
        })
        .unwrap()
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn an_issued_token_verifies_to_its_user() {
        let tokens = issuer(SECRET);
        let user = UserId::new();
        let now = Utc::now();
        let issued = tokens.issue(user, 0, now).unwrap();
        let claims = tokens.verify(&issued.token).unwrap();
        assert_eq!(claims.user_id, user);
        assert_eq!(
            claims.expires_at.timestamp(),
            (now + Duration::hours(1)).timestamp()
        );
        assert!(!claims.token_id.is_empty());
    }

    #[test]
    fn a_token_issued_in_a_session_names_it_and_one_without_names_none() {
        let tokens = issuer(SECRET);
        let (user, session) = (UserId::new(), SessionId::new());
        let now = Utc::now();
        let in_session = tokens.issue_in_session(user, 0, session, now).unwrap();
        assert_eq!(
            tokens.verify(&in_session.token).unwrap().session_id,
            Some(session)
        );
        let legacy = tokens.issue(user, 0, now).unwrap();
        assert_eq!(tokens.verify(&legacy.token).unwrap().session_id, None);
    }

    #[test]
    fn a_token_whose_sid_is_no_session_id_is_refused() {
        let claims = Claims {
            sub: UserId::new().to_string(),
            generation: 0,
            iat: Utc::now().timestamp(),
            exp: Utc::now().timestamp() + 3600,
            jti: "x".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sid: Some("not-a-uuid".into()),
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(issuer(SECRET).verify(&token).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let tokens = issuer(SECRET);
        let issued = tokens
            .issue(UserId::new(), 0, Utc::now() - Duration::hours(2))
            .unwrap();
        assert_eq!(tokens.verify(&issued.token), Err(TokenError::Expired));
    }

    #[test]
    fn an_expired_token_with_a_wrong_signature_is_invalid_not_expired() {
        let issued = issuer(b"another secret that is long enough!!")
            .issue(UserId::new(), 0, Utc::now() - Duration::hours(2))
            .unwrap();
        assert!(matches!(
            issuer(SECRET).verify(&issued.token),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let issued = issuer(b"another secret that is long enough!!")
            .issue(UserId::new(), 0, Utc::now())
            .unwrap();
        assert!(issuer(SECRET).verify(&issued.token).is_err());
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let tokens = issuer(SECRET);
        let issued = tokens.issue(UserId::new(), 0, Utc::now()).unwrap();
        let mut parts: Vec<String> = issued.token.split('.').map(Into::into).collect();
        let other = Claims {
            sub: UserId::new().to_string(),
            generation: 0,
            iat: Utc::now().timestamp(),
            exp: Utc::now().timestamp() + 3600,
            jti: "x".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sid: None,
        };
        parts[1] = b64(&serde_json::to_vec(&other).unwrap());
        assert!(tokens.verify(&parts.join(".")).is_err());
    }

    #[test]
    fn the_none_algorithm_and_other_algorithms_are_refused() {
        let tokens = issuer(SECRET);
        let claims = Claims {
            sub: UserId::new().to_string(),
            generation: 0,
            iat: Utc::now().timestamp(),
            exp: Utc::now().timestamp() + 3600,
            jti: "x".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sid: None,
        };
        let payload = b64(&serde_json::to_vec(&claims).unwrap());
        let unsigned = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(tokens.verify(&unsigned).is_err());
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(tokens.verify(&hs512).is_err());
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let claims = Claims {
            sub: UserId::new().to_string(),
            generation: 0,
            iat: Utc::now().timestamp(),
            exp: Utc::now().timestamp() + 3600,
            jti: "x".into(),
            iss: ISSUER.into(),
            aud: "some-other-service".into(),
            sid: None,
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(issuer(SECRET).verify(&token).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(
            JwtIssuer::new(JwtConfig {
                secret: b"short".to_vec(),
                ttl: Duration::hours(1)
            })
            .is_err()
        );
    }
}
