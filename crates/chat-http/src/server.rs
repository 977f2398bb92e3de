//! What serves one TCP connection: actix-web's app for requests, and the WebSocket upgrade
//! service for handshakes, which takes the connection out of the HTTP dispatcher.
//!
//! actix-web's `HttpServer` cannot take an upgrade service, so this builds the same
//! `HttpService` it would, with the same timeouts, plus the upgrade. The caller runs it on
//! an `actix_server::Server`.

use std::net::SocketAddr;
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_http::{HttpService, KeepAlive};
use actix_server::GracefulShutdownSignal;
use actix_service::{IntoServiceFactory, ServiceFactory, ServiceFactoryExt, map_config};
use actix_web::dev::AppConfig;
use actix_web::middleware::Logger;
use actix_web::{App, web};
use tokio::net::TcpStream;

use crate::state::AppState;
use crate::ws::upgrade;

/// The service for connections accepted on `local_addr`.
pub fn service(
    state: web::Data<AppState>,
    local_addr: SocketAddr,
    shutdown: GracefulShutdownSignal,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = DispatchError, InitError = ()>
{
    let app = App::new()
        .wrap(crate::json_errors())
        .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
        .app_data(state.clone())
        .configure(crate::configure)
        .into_factory()
        .map_err(|error| error.as_response_error().error_response());
    HttpService::build()
        .keep_alive(KeepAlive::default())
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        // Chat frames are small and each matters now: without this, Nagle's algorithm holds
        // a frame back until the client acknowledges the previous one, often for the
        // client's next send or its 40 ms delayed ACK.
        .tcp_nodelay(true)
        .local_addr(local_addr)
        .graceful_shutdown_signal(move || {
            let shutdown = shutdown.clone();
            async move { shutdown.notified().await }
        })
        .upgrade(upgrade::service(state))
        // Requests here carry their `Host`; the app's configured host (a fallback for
        // requests without one) is actix-web's default.
        .finish(map_config(app, |()| AppConfig::default()))
        .tcp()
}
