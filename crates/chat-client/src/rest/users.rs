//! Profiles (yours and others'), blocking, and presence (`/users/*`, `/presence/*`).

use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::types::{BlockedUser, Me, Presence, PresencePrivacy, ProfileChanges, User};
use crate::{Client, Error};

impl Client {
    /// Users whose username or full name contains `q` (every user when `None`), a page of
    /// at most `limit` (1 to 200) from `offset`.
    pub async fn list_users(
        &self,
        q: Option<&str>,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<Vec<User>, Error> {
        #[derive(Serialize)]
        struct Query<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            q: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            limit: Option<u32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            offset: Option<u32>,
        }
        self.get_query("api/v1/users", &Query { q, limit, offset })
            .await
    }

    /// A user's public profile. Fails with `404 user_not_found`.
    pub async fn user(&self, user_id: Uuid) -> Result<User, Error> {
        self.get(&format!("api/v1/users/{user_id}")).await
    }

    /// Your profile (the same as [`Client::me`]).
    pub async fn profile(&self) -> Result<Me, Error> {
        self.get("api/v1/users/me").await
    }

    /// Edits your profile; answers it as it now is. Changing the password needs
    /// `current_password` (`403` when it is wrong); a taken email is `409 email_taken`.
    pub async fn update_me(&self, changes: &ProfileChanges) -> Result<Me, Error> {
        self.call(Method::PUT, "api/v1/users/me", Some(changes))
            .await
    }

    /// Sets your avatar to the image at `url` (`http(s)://`), or removes it with `None`.
    pub async fn set_avatar(&self, url: Option<&str>) -> Result<Me, Error> {
        let changes = ProfileChanges {
            avatar_url: Some(url.unwrap_or_default().to_owned()),
            ..ProfileChanges::default()
        };
        self.update_me(&changes).await
    }

    /// Changes your password. Your other sessions keep working; end them with
    /// [`Client::revoke_other_sessions`] if the old password may be known to someone.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<(), Error> {
        let changes = ProfileChanges {
            password: Some(new.to_owned()),
            current_password: Some(current.to_owned()),
            ..ProfileChanges::default()
        };
        self.update_me(&changes).await.map(drop)
    }

    /// Deactivates your account (needs your password): every session ends and you can no
    /// longer log in. The session is forgotten here too.
    pub async fn deactivate_me(&self, password: &str) -> Result<Me, Error> {
        let me = self
            .call(
                Method::POST,
                "api/v1/users/me/deactivate",
                Some(&json!({ "password": password })),
            )
            .await?;
        self.set_session(None).await;
        Ok(me)
    }

    /// Blocks a user: they can no longer start a direct conversation with you, send into
    /// the one you have, or add you to a group (they get `403 blocked`). Idempotent.
    pub async fn block_user(&self, user_id: Uuid) -> Result<(), Error> {
        let path = format!("api/v1/users/{user_id}/block");
        self.call_empty(Method::PUT, &path, None::<&()>).await
    }

    /// Lifts a block. Idempotent.
    pub async fn unblock_user(&self, user_id: Uuid) -> Result<(), Error> {
        let path = format!("api/v1/users/{user_id}/block");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// The users you blocked.
    pub async fn blocked_users(&self) -> Result<Vec<BlockedUser>, Error> {
        self.get("api/v1/users/me/blocks").await
    }

    /// Whether a user is online, and when last seen (unless they hide it).
    pub async fn presence(&self, user_id: Uuid) -> Result<Presence, Error> {
        self.get(&format!("api/v1/users/{user_id}/presence")).await
    }

    /// The presence of several users at once.
    pub async fn query_presence(&self, user_ids: &[Uuid]) -> Result<Vec<Presence>, Error> {
        self.call(
            Method::POST,
            "api/v1/presence/query",
            Some(&json!({ "user_ids": user_ids })),
        )
        .await
    }

    /// Your presence privacy setting.
    pub async fn presence_privacy(&self) -> Result<PresencePrivacy, Error> {
        self.get("api/v1/users/me/privacy").await
    }

    /// Changes your presence privacy setting; answers it as it now is.
    pub async fn set_presence_privacy(
        &self,
        privacy: PresencePrivacy,
    ) -> Result<PresencePrivacy, Error> {
        self.call(Method::PUT, "api/v1/users/me/privacy", Some(&privacy))
            .await
    }
}
