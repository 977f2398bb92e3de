//! Your account and its login sessions (`/auth/*`), and the server's health. Signing up,
//! logging in and out live in the core (`client.rs`), as they change the client's session.

use reqwest::Method;
use uuid::Uuid;

use crate::types::{Health, Me, SessionInfo};
use crate::{Client, Error};

impl Client {
    /// Your account; also a cheap check that the session works.
    pub async fn me(&self) -> Result<Me, Error> {
        self.get("api/v1/auth/me").await
    }

    /// Your login sessions, the current one marked.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, Error> {
        self.get("api/v1/auth/sessions").await
    }

    /// Ends one of your sessions: its tokens stop working at once and its sockets close.
    /// Ending the current one is a logout (prefer [`Client::logout`], which also forgets it
    /// here). Fails with `404` for a session that is not yours or already ended.
    pub async fn end_session(&self, session_id: Uuid) -> Result<(), Error> {
        let path = format!("api/v1/auth/sessions/{session_id}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// Ends every other session of your account; answers how many ended.
    pub async fn revoke_other_sessions(&self) -> Result<usize, Error> {
        #[derive(serde::Deserialize)]
        struct Revoked {
            ended: usize,
        }
        let revoked: Revoked = self
            .call(
                Method::POST,
                "api/v1/auth/sessions/revoke-others",
                None::<&()>,
            )
            .await?;
        Ok(revoked.ended)
    }

    /// The server's health (`GET /health`, no login needed). A server that answers 503
    /// still describes what is wrong: that comes back as `Ok` with a status other than
    /// `ok`, so a monitor can show why.
    pub async fn health(&self) -> Result<Health, Error> {
        let response = self.http().get(self.url("health")).send().await?;
        if response.status().is_success()
            || response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
        {
            return crate::client::decode(response).await;
        }
        Err(crate::client::api_error(response).await)
    }
}
