//! `GET /health`: liveness with a real database round trip.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, `degraded` (reads work, writes fail) or `unavailable`.
    pub status: &'static str,
    /// `ok`, `degraded`, or `unavailable: ` and what failed.
    pub database: String,
    /// Why the database is degraded, e.g. "writes are failing: the disk is full".
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
        (status = 503, description = "The database cannot be reached, or its writes fail", body = HealthResponse),
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
    match database {
        Ok(None) => HttpResponse::Ok().json(HealthResponse {
            status: "ok",
            database: "ok".into(),
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
                reason: None,
                version,
                connections,
                pending_connections,
            })
        }
    }
}
