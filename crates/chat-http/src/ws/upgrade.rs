//! The WebSocket handshake, taken before actix-web's router.
//!
//! actix-http hands every request that asks for a protocol upgrade to this service together
//! with the connection itself. A handshake on [`super::PATH`] that passes the checks gets its
//! `101` and a [`WsSocket`] on the bare stream, so the HTTP dispatcher and its buffers are let
//! go; anything else is answered with the API's JSON error and the connection is closed.

use std::convert::Infallible;
use std::io;

use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::h1;
use actix_http::header::{self, HeaderMap};
use actix_http::{ConnectionType, Request, Response, ws};
use actix_service::{ServiceFactory, fn_service};
use actix_web::{http::StatusCode, web};
use futures_util::SinkExt;
use futures_util::future::LocalBoxFuture;
use tokio::net::TcpStream;
use tracing::Instrument;

use super::socket::WsSocket;
use super::{OpenRefused, Socket, session};
use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::request_id;
use crate::state::AppState;

/// What actix-http calls an upgrade: the request head and the connection, its HTTP codec
/// and any bytes read past the head.
pub type UpgradeRequest = (Request, Framed<TcpStream, h1::Codec>);

/// The upgrade service for `actix_http::HttpService::build().upgrade(..)`. It never fails:
/// a connection that breaks during the handshake is dropped.
pub fn service(
    state: web::Data<AppState>,
) -> impl ServiceFactory<UpgradeRequest, Config = (), Response = (), Error = Infallible, InitError = ()>
+ Clone {
    fn_service(move |(req, framed): UpgradeRequest| {
        let state = state.clone();
        // Boxed: the HTTP dispatcher of every connection is sized for this future.
        Box::pin(async move {
            if let Err(error) = upgrade(state, req, framed).await {
                tracing::debug!(%error, "connection lost during an upgrade");
            }
            Ok(())
        }) as LocalBoxFuture<'static, Result<(), Infallible>>
    })
}

/// The handshake has a request id like any request: in its response, its error body and its
/// log lines. The session that follows logs by user, not by request: a span held for a
/// socket's whole life would cost every idle connection memory.
async fn upgrade(
    state: web::Data<AppState>,
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> io::Result<()> {
    let id = request_id::from_headers(&req.head().headers);
    let span = tracing::info_span!("request", request_id = %id.0);
    handshake(state, req, framed, id).instrument(span).await
}

async fn handshake(
    state: web::Data<AppState>,
    req: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
    id: request_id::RequestId,
) -> io::Result<()> {
    let peer = req.peer_addr();
    let (token, socket) = match accept(&state, &req) {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::info!(?peer, path = req.path(), status = %error.status, code = error.code, "upgrade refused");
            let mut response = error.response_with_request_id(Some(id.0.clone()));
            response
                .headers_mut()
                .insert(request_id::HEADER, id.header_value());
            return refuse(framed, response.into()).await;
        }
    };
    let mut response = ws::handshake_response(req.head()).finish().drop_body();
    response
        .headers_mut()
        .insert(request_id::HEADER, id.header_value());
    framed
        .send(h1::Message::Item((response, BodySize::None)))
        .await?;
    tracing::debug!(?peer, "websocket opened");
    let parts = framed.into_parts();
    let max_frame = state.hub.config().max_frame_bytes;
    let ws = WsSocket::new(parts.io, parts.read_buf, max_frame);
    actix_web::rt::spawn(session::run(state.into_inner(), ws, token, socket));
    Ok(())
}

/// Checks a handshake: the path, the WebSocket headers, the browser origin and the node's
/// capacity. Returns the token given with it, if any, and the claimed socket slot.
fn accept(
    state: &AppState,
    req: &Request,
) -> Result<(Option<Result<String, ApiError>>, Socket), ApiError> {
    if req.path().trim_end_matches('/') != super::PATH {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no WebSocket endpoint here; connect to {}", super::PATH),
        ));
    }
    ws::verify_handshake(req.head()).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_websocket_handshake",
            e.to_string(),
        )
    })?;
    let config = state.hub.config();
    if !origin_allowed(&req.head().headers, &config.allowed_origins) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin may not open a WebSocket here (see CHAT_ALLOWED_ORIGINS)",
        ));
    }
    let token = query_token(req.uri().query()).or_else(|| bearer_token(&req.head().headers));
    let peer = req.peer_addr().map(|addr| addr.ip());
    let socket = state
        .hub
        .open_socket(peer, token.is_some())
        .map_err(|refused| {
            let (code, detail) = match refused {
                OpenRefused::Full => (
                    "too_many_connections",
                    "the server is at its connection limit; retry later",
                ),
                OpenRefused::TooManyPending => (
                    "too_many_pending_connections",
                    "too many connections are waiting to authenticate; retry later",
                ),
                OpenRefused::TooManyPendingFromAddress => (
                    "too_many_pending_connections",
                    "your address holds too many connections that have not authenticated; \
                 authenticate or close them first",
                ),
            };
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
        })?;
    Ok((token, socket))
}

#[derive(serde::Deserialize)]
struct ConnectParams {
    token: Option<String>,
}

fn query_token(query: Option<&str>) -> Option<Result<String, ApiError>> {
    serde_urlencoded::from_str::<ConnectParams>(query?)
        .ok()?
        .token
        .map(Ok)
}

/// Writes an error response and closes the connection. The head and the body are buffered
/// and flushed together, in one write: a client that reads only what arrived with the head
/// (as WebSocket libraries do with a refused handshake) still gets the JSON error.
async fn refuse(
    mut framed: Framed<TcpStream, h1::Codec>,
    response: Response<BoxBody>,
) -> io::Result<()> {
    let (mut head, body) = response.into_parts();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let size = body.size();
    framed.feed(h1::Message::Item((head, size))).await?;
    if let Ok(bytes) = body.try_into_bytes() {
        framed.feed(h1::Message::Chunk(Some(bytes))).await?;
    }
    framed.send(h1::Message::Chunk(None)).await?;
    SinkExt::<h1::Message<(Response<()>, BodySize)>>::close(&mut framed).await
}

/// A handshake without `Origin` comes from a non-browser client and is allowed; a browser's
/// must come from this server's own origin or a listed one.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let same_origin = origin
        .split_once("://")
        .is_some_and(|(_, authority)| Some(authority) == host);
    same_origin
        || allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
}
