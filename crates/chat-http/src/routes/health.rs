//! `GET /health`: liveness with a real database round trip, and the event bus on a node of a
//! cluster.
//!
//! A node that has lost its bus answers 503 (`degraded`) while it keeps serving the sockets it
//! has: its clients miss what other nodes publish until it is back (then they are told to
//! `resync`), so a load balancer should send new clients to a node that hears the whole
//! cluster. When the broker itself is down every node says so, and every node still serves.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, `degraded` (reads work, writes fail; or the node lost its event bus) or
    /// `unavailable`.
    pub status: &'static str,
    /// `ok`, `degraded`, or `unavailable: ` and what failed.
    pub database: String,
    /// On a node of a cluster: `ok` or `down` (the node has lost its event bus); absent on a
    /// single node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<&'static str>,
    /// Why the node is degraded, e.g. "writes are failing: the disk is full".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub version: &'static str,
    /// Open, authenticated WebSocket connections on this node.
    pub connections: usize,
    /// Open WebSocket connections that have not authenticated yet.
    pub pending_connections: usize,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // HEAD answers as GET does, without the body (actix-http drops it for HEAD).
    cfg.service(
        crate::routes::resource("/health", "GET, HEAD")
            .route(web::get().to(health))
            .route(web::head().to(health)),
    );
}

/// Health check.
#[utoipa::path(
    get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "Serving, database reachable", body = HealthResponse),
        (status = 503, description = "The database cannot be reached, its writes fail, or the node has lost its event bus", body = HealthResponse),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let probe = state.health.clone();
    let database = match web::block(move || probe.check().map(|()| probe.degraded())).await {
        Ok(result) => result,
        Err(_) => Err("health check did not complete".to_owned()),
    };
    let connections = state.hub.connection_count();
    let pending_connections = state.hub.pending_count();
    let version = env!("CARGO_PKG_VERSION");
    let bus_up = state.bus.as_ref().map(|bus| bus.connected());
    let bus = bus_up.map(|up| if up { "ok" } else { "down" });
    match database {
        Ok(None) if bus_up == Some(false) => {
            tracing::warn!("health check: the event bus is down");
            HttpResponse::ServiceUnavailable().json(HealthResponse {
                status: "degraded",
                database: "ok".into(),
                bus,
                reason: Some(
                    "the event bus is down: this node's clients miss what other nodes publish \
                     until it is back"
                        .into(),
                ),
                version,
                connections,
                pending_connections,
            })
        }
        Ok(None) => HttpResponse::Ok().json(HealthResponse {
            status: "ok",
            database: "ok".into(),
            bus,
            reason: None,
            version,
            connections,
            pending_connections,
        }),
        Ok(Some(reason)) => {
            tracing::warn!(%reason, "health check: the database is degraded");
            HttpResponse::ServiceUnavailable().json(HealthResponse {
                status: "degraded",
                database: "degraded".into(),
                bus,
                reason: Some(reason),
                version,
                connections,
                pending_connections,
            })
        }
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            HttpResponse::ServiceUnavailable().json(HealthResponse {
                status: "unavailable",
                database: format!("unavailable: {error}"),
                bus,
                reason: None,
                version,
                connections,
                pending_connections,
            })
        }
    }
}
