//! Prometheus metrics: the process-wide recorder, the HTTP request middleware, and the scrape
//! endpoint served on its own listener (`CHAT_METRICS_BIND`), never on the public one.
//!
//! Everything counts through the `metrics` facade (adapters call its macros too); this module
//! installs `metrics-exporter-prometheus` behind it. The facade was chosen over the
//! `prometheus` crate because an adapter then names a metric at the point it happens, without
//! a registry handed down through constructors, and because with no recorder installed
//! (no `CHAT_METRICS_BIND`) every call is a no-op.
//!
//! Metrics are process-wide: two servers in one process (the tests) share them. Gauges that
//! a server can read off its own state (open sockets) are set when it is scraped, so they
//! cost nothing between scrapes and are that server's own.

use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, web};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;
use crate::ws::Hub;

/// The path of the scrape endpoint on the metrics listener.
pub const PATH: &str = "/metrics";

/// Upper bounds of the latency histograms, in seconds: 1 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds of the commit batch sizes (a batch holds at most 512 appends).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// How often histogram samples are folded into their buckets between scrapes, so that a
/// server nobody scrapes does not keep every sample.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder for the whole process, once; later calls return the same
/// handle. Fails only if another recorder was installed first.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("chatd_commit_batch_size".into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())?;
            describe();
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("chatd-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                })
                .map_err(|e| format!("cannot start the metrics upkeep thread: {e}"))?;
            Ok(handle)
        })
        .clone()
}

/// The `# HELP` text and unit of every metric chatd records (docs/operations.md lists them).
fn describe() {
    describe_counter!(
        "chatd_http_requests_total",
        "HTTP requests answered, by method, route pattern and status"
    );
    describe_histogram!(
        "chatd_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route pattern"
    );
    describe_gauge!(
        "chatd_websocket_connections",
        "Open WebSockets on this node: authenticated, or pending their token"
    );
    describe_counter!(
        "chatd_websocket_frames_sent_total",
        "Text frames written to WebSockets"
    );
    describe_counter!(
        "chatd_websocket_slow_consumers_dropped_total",
        "WebSockets closed because their client did not keep up with its events"
    );
    describe_counter!("chatd_messages_stored_total", "Messages committed");
    describe_counter!(
        "chatd_deliveries_total",
        "Event frames queued to WebSockets (one per socket reached)"
    );
    describe_histogram!(
        "chatd_commit_batch_size",
        "Message appends carried by one group commit"
    );
    describe_histogram!(
        "chatd_commit_duration_seconds",
        Unit::Seconds,
        "Time one group commit of messages took"
    );
    describe_histogram!(
        "chatd_db_pool_wait_seconds",
        Unit::Seconds,
        "Time spent waiting for a database connection from the pool"
    );
    describe_counter!(
        "chatd_db_pool_timeouts_total",
        "Waits for a database connection that timed out"
    );
    describe_histogram!(
        "chatd_password_hash_queue_wait_seconds",
        Unit::Seconds,
        "Time a password hash waited for a hashing slot"
    );
    describe_counter!(
        "chatd_bus_published_total",
        "Envelopes published to the cluster's event bus"
    );
    describe_counter!(
        "chatd_bus_publish_failures_total",
        "Events that did not reach the event bus (queue full or publish failed)"
    );
    describe_counter!(
        "chatd_bus_received_total",
        "Events received from other nodes over the event bus"
    );
    describe_gauge!(
        "chatd_webhook_outbox_depth",
        "Outbox events the last dispatcher round found waiting to be fanned out"
    );
    describe_counter!(
        "chatd_webhook_deliveries_total",
        "Webhook delivery attempts, by result (delivered, failed)"
    );
    describe_counter!(
        "chatd_webhook_dead_letters_total",
        "Webhook deliveries given up on (dead letters)"
    );
}

/// Middleware (`actix_web::middleware::from_fn`): counts every request and times it, by
/// method, route and status. The route is the pattern that matched
/// (`/api/v1/conversations/{conversation_id}`), never the raw path, so ids do not become
/// label values; a request no route matched is `unmatched`.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    // Read before routing: the router needs the request to itself.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    metrics::histogram!(
        "chatd_http_request_duration_seconds",
        "method" => method,
        "route" => route.clone()
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "chatd_http_requests_total",
        "method" => method,
        "route" => route,
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    result
}

/// The method as a label: the standard ones by name, anything else `other` (a client can
/// send any token as a method; label values must stay a small set).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// What the scrape endpoint reads: the recorder and this server's hub.
struct Scrape {
    handle: PrometheusHandle,
    hub: Arc<Hub>,
}

async fn scrape(scrape: web::Data<Scrape>) -> HttpResponse {
    let gauge = |state: &'static str, value: usize| {
        metrics::gauge!("chatd_websocket_connections", "state" => state).set(value as f64);
    };
    gauge("authenticated", scrape.hub.connection_count());
    gauge("pending", scrape.hub.pending_count());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(scrape.handle.render())
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "only GET /metrics is served here",
    ))
}

/// The metrics listener's server: `GET /metrics` on `listener`, one worker, nothing else.
/// The caller runs the returned server and stops it with the application.
pub fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    hub: Arc<Hub>,
) -> std::io::Result<Server> {
    let data = web::Data::new(Scrape { handle, hub });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route(PATH, web::get().to(scrape))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        let custom = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&custom), "other");
    }
}
