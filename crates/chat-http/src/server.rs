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
use actix_service::{IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, map_config};
use actix_web::dev::AppConfig;
use actix_web::middleware::{Logger, from_fn};
use actix_web::{App, web};
use tokio::net::TcpStream;

use crate::state::AppState;
use crate::ws::upgrade;

/// The request logger: one line a request with its status, size, duration and request id
/// (the id [`crate::request_id::assign`] settled, read from the request's header). Its
/// request line has the values of token query parameters redacted (see [`redact_query`]).
pub fn request_logger() -> Logger {
    Logger::new("%a \"%{request_line}xi\" %s %b %Dms request_id=%{x-request-id}i")
        .custom_request_replace("request_line", |req| {
            let query = req.query_string();
            if query.is_empty() {
                format!("{} {} {:?}", req.method(), req.path(), req.version())
            } else {
                let query = redact_query(query);
                format!(
                    "{} {}?{query} {:?}",
                    req.method(),
                    req.path(),
                    req.version()
                )
            }
        })
}

/// Query parameters whose values are credentials, compared without regard to case.
const SECRET_PARAMS: &[&str] = &["token", "access_token", "device_token", "refresh_token"];

/// A query string fit for a log: the value of every credential parameter (`token`,
/// `access_token`, `device_token`, ...) replaced by `REDACTED`. Names are compared after
/// percent-decoding, so `%74oken=` is caught too.
pub fn redact_query(query: &str) -> std::borrow::Cow<'_, str> {
    let is_secret = |pair: &str| {
        let name = pair.split('=').next().unwrap_or_default();
        form_urlencoded::parse(name.as_bytes())
            .next()
            .is_some_and(|(name, _)| {
                SECRET_PARAMS
                    .iter()
                    .any(|secret| name.eq_ignore_ascii_case(secret))
            })
    };
    if !query.split(['&', ';']).any(is_secret) {
        return query.into();
    }
    query
        .split('&')
        .map(|pair| {
            if pair.split(';').any(is_secret) {
                let name = pair.split('=').next().unwrap_or_default();
                format!("{name}=REDACTED")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
        .into()
}

/// The service for connections accepted on `local_addr`.
pub fn service(
    state: web::Data<AppState>,
    local_addr: SocketAddr,
    shutdown: GracefulShutdownSignal,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = DispatchError, InitError = ()>
{
    let cors = crate::browser::cors(&state.hub.config().allowed_origins);
    // Outermost last. The slash is trimmed before anything reads the path; the request id is
    // settled before anything logs; metrics see the final status; CORS headers are added to
    // error responses too, so a page can read them.
    let app = App::new()
        .wrap(cors)
        .wrap(request_logger())
        .wrap(crate::json_errors())
        .wrap(crate::browser::security_headers())
        .wrap(from_fn(crate::metrics::record_requests))
        .wrap(from_fn(crate::request_id::assign))
        .wrap_fn(|mut req, service| {
            crate::app::trim_trailing_slash(&mut req);
            service.call(req)
        })
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

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, OnceLock};

    use actix_web::test as actix_test;

    use super::*;

    #[test]
    fn token_parameters_are_redacted_and_others_kept() {
        assert_eq!(redact_query("limit=5&offset=10"), "limit=5&offset=10");
        assert_eq!(redact_query("token=eyJ.abc.def"), "token=REDACTED");
        assert_eq!(
            redact_query("a=1&access_token=s3cret&Device_Token=x&b=2"),
            "a=1&access_token=REDACTED&Device_Token=REDACTED&b=2"
        );
        assert_eq!(redact_query("%74oken=s3cret"), "%74oken=REDACTED");
        // A `;`-separated pair is redacted whole: better too much than a leaked token.
        assert_eq!(redact_query("x=1;token=s3cret&y=2"), "x=REDACTED&y=2");
        assert_eq!(redact_query("token"), "token=REDACTED");
    }

    /// Every `log` record this test binary writes (actix-web's logger writes through `log`).
    fn captured() -> &'static Mutex<Vec<String>> {
        static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
        LINES.get_or_init(|| {
            struct Capture;
            impl log::Log for Capture {
                fn enabled(&self, _: &log::Metadata<'_>) -> bool {
                    true
                }
                fn log(&self, record: &log::Record<'_>) {
                    captured().lock().unwrap().push(record.args().to_string());
                }
                fn flush(&self) {}
            }
            static CAPTURE: Capture = Capture;
            let _ = log::set_logger(&CAPTURE);
            log::set_max_level(log::LevelFilter::Info);
            Mutex::default()
        })
    }

    #[actix_web::test]
    async fn the_request_log_never_shows_a_token_from_the_query() {
        let lines = captured();
        let app = actix_test::init_service(App::new().wrap(request_logger()).route(
            "/api/v1/ws",
            web::get().to(actix_web::HttpResponse::BadRequest),
        ))
        .await;
        let request = actix_test::TestRequest::get()
            .uri("/api/v1/ws?token=eyJhbGciOi.SECRETPAYLOAD.sig&x=1")
            .to_request();
        let _ = actix_test::call_service(&app, request).await;
        let lines = lines.lock().unwrap();
        let line = lines
            .iter()
            .find(|line| line.contains("GET /api/v1/ws?"))
            .unwrap_or_else(|| panic!("no request line in {lines:?}"));
        assert!(!line.contains("SECRETPAYLOAD"), "{line}");
        assert!(line.contains("token=REDACTED&x=1"), "{line}");
    }

    /// A `tracing` writer into a buffer the test reads.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn every_log_line_of_a_request_carries_its_id() {
        let lines = captured();
        let traced = Buffer::default();
        let writer = traced.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let app = actix_test::init_service(
            App::new()
                .wrap(request_logger())
                .wrap(from_fn(crate::request_id::assign))
                .route(
                    "/traced",
                    web::get().to(|| async {
                        tracing::warn!("inside the handler");
                        actix_web::HttpResponse::NoContent().finish()
                    }),
                ),
        )
        .await;
        let request = actix_test::TestRequest::get()
            .uri("/traced")
            .insert_header(("X-Request-Id", "log-me-7"))
            .to_request();
        let response = actix_test::call_service(&app, request).await;
        assert_eq!(response.headers().get("x-request-id").unwrap(), "log-me-7");
        drop(response);

        let traced = String::from_utf8(traced.0.lock().unwrap().clone()).unwrap();
        let handler_line = traced
            .lines()
            .find(|line| line.contains("inside the handler"))
            .unwrap_or_else(|| panic!("no handler line in {traced}"));
        assert!(
            handler_line.contains("request_id=log-me-7"),
            "{handler_line}"
        );
        let lines = lines.lock().unwrap();
        let request_line = lines
            .iter()
            .find(|line| line.contains("GET /traced"))
            .unwrap_or_else(|| panic!("no request line in {lines:?}"));
        assert!(
            request_line.contains("request_id=log-me-7"),
            "{request_line}"
        );
    }
}
