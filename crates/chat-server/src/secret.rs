//! The token secret: configured, or generated once and kept in the database.

use rand::RngCore;

use crate::startup::StartupError;
use crate::storage::Storage;

const SETTING: &str = "jwt_secret";

/// The configured secret, or the one stored in the database, generating and storing a random
/// 256-bit secret on first start so tokens stay valid across restarts.
pub fn token_secret(configured: Option<&str>, storage: &Storage) -> Result<Vec<u8>, StartupError> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let (secret, created) = storage.setting_or_insert(SETTING, || {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    })?;
    if created {
        tracing::warn!(
            "CHAT_JWT_SECRET is not set: generated a random token secret and stored it in the \
             database; set CHAT_JWT_SECRET to manage it yourself"
        );
    }
    Ok(secret.into_bytes())
}
