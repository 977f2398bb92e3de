//! The real-time gateway: `/api/v1/ws`.
//!
//! [`Hub`] is the connection registry and implements the domain's event publisher port, so
//! every state change a service makes reaches the right sockets. [`upgrade`] answers the
//! handshake and takes the connection out of the HTTP server; [`socket`] frames it;
//! [`session`] runs it: authentication, client frames, and the outbound queue. [`protocol`]
//! holds the frame shapes; [`UserConnectionCap`] counts each user's connections (per node,
//! or across the cluster). The protocol is documented in `docs/websocket.md`.

pub mod delivery;
mod error;
mod hub;
pub mod presence;
pub mod protocol;
mod session;
mod socket;
pub mod upgrade;
mod user_cap;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chat_domain::limits::Quota;

pub use hub::{Hub, OpenRefused, PresenceListener, Registration, Socket};
pub use user_cap::{MemoryConnectionCap, UserConnectionCap};

use crate::error::ApiError;

/// Tunables of the gateway.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// How often the server pings each connection.
    pub ping_interval: Duration,
    /// A connection silent for this long (no frame, no pong) is dropped.
    pub client_timeout: Duration,
    /// How long a connection may take to send its token frame.
    pub auth_timeout: Duration,
    /// Frames queued per connection before it counts as too slow and is closed (1013).
    pub outbound_queue: usize,
    /// The largest frame accepted from a client; larger ones close the connection (1009).
    pub max_frame_bytes: usize,
    /// Authenticated sockets this node serves; beyond it the handshake is refused with 503.
    pub max_connections: usize,
    /// Sockets opened without a token that have not sent their token frame yet, over the
    /// whole node. A budget of their own: they never take an authenticated slot.
    pub max_pending_connections: usize,
    /// Sockets not authenticated yet from one client address.
    pub max_pending_per_address: usize,
    /// Authenticated connections one user may hold (devices, tabs).
    pub max_connections_per_user: usize,
    /// Frames a connection may send; `None` for no limit.
    pub frame_quota: Option<Quota>,
    /// Browser origins allowed besides the server's own (`*` allows any). A handshake with an
    /// `Origin` header that is neither same-origin nor listed is refused with 403, which
    /// stops other sites from opening sockets with a visitor's credentials.
    pub allowed_origins: Vec<String>,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            client_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            outbound_queue: 1024,
            max_frame_bytes: 64 * 1024,
            max_connections: 10_000,
            max_pending_connections: DEFAULT_MAX_PENDING,
            max_pending_per_address: DEFAULT_MAX_PENDING_PER_ADDRESS,
            max_connections_per_user: 20,
            frame_quota: Some(Quota::per_second(30, 60)),
            allowed_origins: Vec::new(),
        }
    }
}

/// Default budget of sockets not authenticated yet: a client sends its token within
/// milliseconds, so these are few at any moment unless someone holds sockets open on purpose.
pub const DEFAULT_MAX_PENDING: usize = 1024;
/// Default share of that budget for one client address.
pub const DEFAULT_MAX_PENDING_PER_ADDRESS: usize = 32;

/// Where clients open the WebSocket.
pub const PATH: &str = "/api/v1/ws";

/// Registers `/ws`; mounted inside the `/api/v1` scope. A real handshake never reaches
/// actix-web's router: actix-http hands it to [`upgrade::service`] first. What does reach
/// this route is a plain request to the WebSocket's address.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::routes::resource("/ws", "GET").route(web::get().to(connect)));
}

/// Upgrades to a WebSocket. The token may come as `?token=`, as an `Authorization: Bearer`
/// header, or as the first frame `{"token": "..."}`.
#[utoipa::path(
    get, path = "/api/v1/ws", tag = "realtime",
    params(("token" = Option<String>, Query, description = "Access token, for clients that cannot set headers")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol described in docs/websocket.md"),
        (status = 400, description = "Not a WebSocket handshake", body = crate::error::ErrorBody),
        (status = 403, description = "The browser origin is not allowed", body = crate::error::ErrorBody),
        (status = 503, description = "The server is at its connection limit (`too_many_connections`), or holds too many sockets that have not authenticated yet, from everyone or from your address (`too_many_pending_connections`)", body = crate::error::ErrorBody),
    )
)]
pub async fn connect() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "not_a_websocket_handshake",
        "open a WebSocket here: GET with Connection: Upgrade and Upgrade: websocket",
    ))
}
