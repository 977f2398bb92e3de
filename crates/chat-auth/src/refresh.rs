//! [`RefreshTokens`]: opaque refresh tokens, 256 random bits each, kept only as a SHA-256.
//!
//! A token reads `<session id, 32 hex digits>.<43 base64url characters>`. The session id in
//! front lets the store find the session whose token is presented even when it is a spent
//! one, which is what theft detection needs (see `chat_domain::session`); it is no secret
//! (the session's own access tokens carry it too). The random part is the secret: it is
//! drawn from the operating system's generator through a CSPRNG, and a token's SHA-256 is
//! all the store ever sees, so a copy of the database redeems nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::SessionId;
use chat_domain::ports::RefreshTokens;
use chat_domain::session::{MintedRefresh, PresentedRefresh, RefreshHash};
use chrono::Duration;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Random bytes in a refresh token: 256 bits.
const SECRET_BYTES: usize = 32;

/// Mints refresh tokens that can be redeemed for `lifetime` after they are issued.
#[derive(Debug, Clone)]
pub struct RandomRefreshTokens {
    lifetime: Duration,
}

impl RandomRefreshTokens {
    pub fn new(lifetime: Duration) -> Result<Self, String> {
        if lifetime <= Duration::zero() {
            return Err("the refresh token lifetime must be positive".into());
        }
        Ok(Self { lifetime })
    }
}

fn hash(token: &str) -> RefreshHash {
    let digest = Sha256::digest(token.as_bytes());
    RefreshHash(digest.iter().map(|b| format!("{b:02x}")).collect())
}

impl RefreshTokens for RandomRefreshTokens {
    fn mint(&self, session: SessionId) -> MintedRefresh {
        let mut secret = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        let token = format!(
            "{}.{}",
            session.as_uuid().simple(),
            URL_SAFE_NO_PAD.encode(secret)
        );
        MintedRefresh {
            hash: hash(&token),
            token,
        }
    }

    fn read(&self, token: &str) -> Option<PresentedRefresh> {
        let (session, secret) = token.split_once('.')?;
        if session.len() != 32 || secret.len() != 43 {
            return None;
        }
        let decoded = URL_SAFE_NO_PAD.decode(secret).ok()?;
        if decoded.len() != SECRET_BYTES {
            return None;
        }
        Some(PresentedRefresh {
            session_id: Uuid::try_parse(session).ok()?.into(),
            hash: hash(token),
        })
    }

    fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> RandomRefreshTokens {
        RandomRefreshTokens::new(Duration::days(60)).unwrap()
    }

    #[test]
    fn a_minted_token_reads_back_to_its_session_and_hash() {
        let session = SessionId::new();
        let minted = tokens().mint(session);
        let read = tokens().read(&minted.token).unwrap();
        assert_eq!(read.session_id, session);
        assert_eq!(read.hash, minted.hash);
        assert_eq!(minted.hash.0.len(), 64);
        assert!(!minted.hash.0.contains(&minted.token));
    }

    #[test]
    fn every_token_is_new_even_for_one_session() {
        let session = SessionId::new();
        let (a, b) = (tokens().mint(session), tokens().mint(session));
        assert_ne!(a.token, b.token);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn anything_not_shaped_like_a_refresh_token_is_not_read() {
        let minted = tokens().mint(SessionId::new());
        let (session, secret) = minted.token.split_once('.').unwrap();
        for token in [
            "",
            "garbage",
            session,
            &format!("{session}."),
            &format!("{session}.{}", &secret[1..]),
            &format!("{session}.{secret}x"),
            &format!("{}.{secret}", &session[1..]),
            &format!("{}z.{secret}", &session[1..]),
            &format!("{session}.{}*", &secret[1..]),
        ] {
            assert!(tokens().read(token).is_none(), "{token}");
        }
    }

    #[test]
    fn a_lifetime_must_be_positive() {
        assert!(RandomRefreshTokens::new(Duration::zero()).is_err());
    }
}
