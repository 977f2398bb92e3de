//! What every handler shares: the domain services, the health probe and the real-time hub.

use std::sync::Arc;

use actix_web::web;
use chat_domain::message::MessageView;
use chat_domain::ports::RateLimiter;
use chat_domain::service::ChatServices;
use chat_domain::service::{Authenticated, SendMessage};
use chat_domain::{ConversationId, DomainError, StoreError, UserId};

use crate::auth_cache::AuthCache;
use crate::error::ApiError;
use crate::ws::Hub;

/// Checks a dependency the server cannot work without (the database).
pub trait HealthProbe: Send + Sync {
    /// `Err` names what failed.
    fn check(&self) -> Result<(), String>;

    /// Why the dependency answers but cannot take writes (a full disk), if so: the server
    /// is up, yet every change a client makes fails. Shown to anyone, so no internals.
    fn degraded(&self) -> Option<String> {
        None
    }
}

/// The cluster's event bus, on a node that has one.
pub trait BusProbe: Send + Sync {
    /// Whether the node is connected to its broker now.
    fn connected(&self) -> bool;
}

pub struct AppState {
    pub services: ChatServices,
    /// Budgets the edge itself enforces (WebSocket frames), shared with the services'.
    pub limiter: Arc<dyn RateLimiter>,
    /// Recently verified tokens; also subscribed to revocations.
    pub auth_cache: Arc<AuthCache>,
    pub health: Arc<dyn HealthProbe>,
    /// The event bus, on a node of a cluster; `None` for a single node (in-process events).
    pub bus: Option<Arc<dyn BusProbe>>,
    pub hub: Arc<Hub>,
}

impl AppState {
    /// Runs a use case on the blocking pool (services do database and bcrypt work) and maps
    /// its error to the HTTP one.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&ChatServices) -> Result<T, DomainError> + Send + 'static,
    {
        let services = self.services.clone();
        Ok(web::block(move || f(&services)).await??)
    }

    /// Resolves a bearer token: from the cache of recently verified tokens when it is there
    /// (no thread, no database), else by the accounts service on the blocking pool.
    pub async fn authenticate(&self, token: String) -> Result<Authenticated, ApiError> {
        if let Some(session) = self.auth_cache.get(&token) {
            return Ok(session);
        }
        let presented = token.clone();
        let session = self
            .run(move |s| s.accounts.authenticate(&presented))
            .await?;
        self.auth_cache.insert(token, session.clone());
        Ok(session)
    }

    /// Sends a message without holding a thread while it is stored: the store answers
    /// through a channel once the message has committed.
    pub async fn send_message(
        &self,
        sender: UserId,
        conversation: ConversationId,
        request: SendMessage,
    ) -> Result<(MessageView, bool), ApiError> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.services
            .messages
            .submit(sender, conversation, request, move |result| {
                let _ = reply.send(result);
            });
        let outcome = outcome.await.map_err(|_| {
            DomainError::from(StoreError::Unavailable(
                "the store dropped a message without an answer".into(),
            ))
        });
        Ok(outcome??)
    }
}
