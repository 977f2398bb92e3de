//! What every handler shares: the domain services, the health probe and the real-time hub.

use std::sync::Arc;

use actix_web::web;
use chat_domain::message::MessageView;
use chat_domain::service::ChatServices;
use chat_domain::service::{Authenticated, SendMessage};
use chat_domain::{ConversationId, DomainError, StoreError, UserId};

use crate::auth_cache::AuthCache;
use crate::error::ApiError;
use crate::rate_limit::MemoryRateLimiter;
use crate::ws::{Hub, UserConnectionCap};

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
    /// The frame budget of each WebSocket. Always this node's memory, never shared: a
    /// socket's frame rate concerns one socket on one node, and it is taken on the async
    /// worker for every frame, where no database call may run.
    pub frame_limiter: Arc<MemoryRateLimiter>,
    /// How many WebSockets each user holds, on this node or across the cluster.
    pub user_connections: Arc<dyn UserConnectionCap>,
    /// Recently verified tokens; also subscribed to revocations.
    pub auth_cache: Arc<AuthCache>,
    pub health: Arc<dyn HealthProbe>,
    /// The event bus, on a node of a cluster; `None` for a single node (in-process events).
    pub bus: Option<Arc<dyn BusProbe>>,
    pub hub: Arc<Hub>,
    /// Uploads and downloads of files.
    pub uploads: crate::routes::attachments::Uploads,
    /// Webhook endpoints and dead letters (admin routes).
    pub webhooks: chat_domain::service::WebhookService,
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
        self.submit_message(sender, conversation, request, move |result| {
            let _ = reply.send(result);
        })
        .await?;
        let outcome = outcome.await.map_err(|_| {
            DomainError::from(StoreError::Unavailable(
                "the store dropped a message without an answer".into(),
            ))
        });
        Ok(outcome??)
    }

    /// Hands a message to [`MessageService::submit`] and returns once it is handed over;
    /// `done` gets the outcome when it is stored. Where the sender's message budget lives
    /// in another process (a database shared by the nodes), taking from it waits on that
    /// process, so the hand-over runs on the blocking pool; in-process budgets are taken
    /// right here. Either way, messages handed over one after another keep their order.
    /// `Err` only when the blocking pool is gone (the server is stopping).
    ///
    /// [`MessageService::submit`]: chat_domain::service::MessageService::submit
    pub async fn submit_message(
        &self,
        sender: UserId,
        conversation: ConversationId,
        request: SendMessage,
        done: impl FnOnce(Result<(MessageView, bool), DomainError>) + Send + 'static,
    ) -> Result<(), actix_web::error::BlockingError> {
        if !self.services.messages.submit_may_block() {
            self.services
                .messages
                .submit(sender, conversation, request, done);
            return Ok(());
        }
        let services = self.services.clone();
        web::block(move || {
            services
                .messages
                .submit(sender, conversation, request, done)
        })
        .await?;
        Ok(())
    }
}
