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
    let bus = state.bus.as_ref().map(|bus| bus.connected());
    let (healthy, body) = report(
        database,
        bus,
        state.hub.connection_count(),
        state.hub.pending_count(),
    );
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The answer for a database check's outcome (`Ok(Some(reason))`: degraded) and the bus's
/// state (`None`: no bus), with whether it is healthy (200) or not (503).
fn report(
    database: Result<Option<String>, String>,
    bus_up: Option<bool>,
    connections: usize,
    pending_connections: usize,
) -> (bool, HealthResponse) {
    let bus = bus_up.map(|up| if up { "ok" } else { "down" });
    let body = |status, database, reason| HealthResponse {
        status,
        database,
        bus,
        reason,
        version: env!("CARGO_PKG_VERSION"),
        connections,
        pending_connections,
    };
    match database {
        Ok(None) if bus_up == Some(false) => {
            tracing::warn!("health check: the event bus is down");
            let reason = "the event bus is down: this node's clients miss what other nodes \
                          publish until it is back";
            (false, body("degraded", "ok".into(), Some(reason.into())))
        }
        Ok(None) => (true, body("ok", "ok".into(), None)),
        Ok(Some(reason)) => {
            tracing::warn!(%reason, "health check: the database is degraded");
            (false, body("degraded", "degraded".into(), Some(reason)))
        }
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            let database = format!("unavailable: {error}");
            (false, body("unavailable", database, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_without_its_bus_is_degraded_and_says_so() {
        let (healthy, body) = report(Ok(None), Some(false), 3, 0);
        assert!(!healthy);
        assert_eq!((body.status, body.bus), ("degraded", Some("down")));
        assert_eq!(body.database, "ok");
        assert_eq!(body.connections, 3, "it still serves its sockets");
    }

    #[test]
    fn the_bus_field_is_there_only_on_a_node_with_a_bus() {
        let (healthy, body) = report(Ok(None), Some(true), 0, 0);
        assert!(healthy);
        assert_eq!((body.status, body.bus), ("ok", Some("ok")));
        let (healthy, body) = report(Ok(None), None, 0, 0);
        assert!(healthy);
        let json = serde_json::to_value(&body).unwrap();
        assert!(json.get("bus").is_none(), "{json}");
    }

    #[test]
    fn a_database_problem_shows_beside_the_bus() {
        let (healthy, body) = report(Err("gone".into()), Some(true), 0, 0);
        assert!(!healthy);
        assert_eq!((body.status, body.bus), ("unavailable", Some("ok")));
    }
}
