//! The HTTP and WebSocket edge of chatd.
//!
//! Request and response bodies ([`dto`]) and the one error shape ([`error`]) live here, not
//! in the domain: handlers parse input into domain calls, run them on the blocking pool and
//! map the result back. [`configure`] registers everything on an actix-web `App`.

pub mod app;
pub mod auth;
pub mod auth_cache;
pub mod browser;
pub mod dto;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod state;
pub mod webhooks;
pub mod ws;

pub use app::{configure, json_errors};
pub use auth_cache::{AuthCache, PublishAll};
pub use rate_limit::MemoryRateLimiter;
pub use state::{AppState, BusProbe, HealthProbe};
pub use ws::{Hub, MemoryConnectionCap, UserConnectionCap, WsConfig};
