//! The web client: `GET /` serves its page and `GET /assets/{file}` its scripts and styles.
//!
//! The files live in `crates/chat-http/web/` and are compiled into the binary with
//! `include_str!`, so a fresh build serves the client with nothing else installed and no
//! file is ever read from disk at run time. Plain ES modules need no build step; the list
//! below is the whole client (a file that is not listed is a JSON 404 like any other).
//!
//! Caching: every file carries a strong `ETag` (a SHA-256 of its bytes, taken once) and
//! `Cache-Control: no-cache`, so a browser keeps its copy but asks each time whether it is
//! still current, and a new binary's client is picked up at the next load without stale
//! modules mixing with fresh ones (the modules import each other by plain names, which
//! cannot carry a content hash without a build step). An unchanged file costs a 304.

use std::sync::LazyLock;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::routes::resource;

/// One embedded file: its name under `/assets/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page itself, served at `/`.
const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("../../web/index.html"),
};

/// Everything the page loads, served at `/assets/{name}`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_str!("../../web/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_str!("../../web/api.js"),
    },
    Asset {
        name: "socket.js",
        content_type: JS,
        body: include_str!("../../web/socket.js"),
    },
    Asset {
        name: "store.js",
        content_type: JS,
        body: include_str!("../../web/store.js"),
    },
    Asset {
        name: "ui.js",
        content_type: JS,
        body: include_str!("../../web/ui.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../web/icon.svg"),
    },
];

/// The `ETag` of each asset (index first, then `ASSETS` in order), computed on first use.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    std::iter::once(&INDEX)
        .chain(ASSETS)
        .map(|asset| format!("\"{}\"", hex::encode(Sha256::digest(asset.body.as_bytes()))))
        .collect()
});

/// Registers `/` and `/assets/{file}` (GET and HEAD).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/", "GET, HEAD")
            .route(web::get().to(index))
            .route(web::head().to(index)),
    )
    .service(
        resource("/assets/{file}", "GET, HEAD")
            .route(web::get().to(asset))
            .route(web::head().to(asset)),
    );
}

/// The web client's page.
async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, &INDEX, &ETAGS[0])
}

/// One of the web client's scripts, styles or images; 404 (`not_found`) for any other name.
async fn asset(req: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let file = file.into_inner();
    let (i, found) = ASSETS
        .iter()
        .enumerate()
        .find(|(_, a)| a.name == file)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such file in the web client",
            )
        })?;
    Ok(serve(&req, found, &ETAGS[i + 1]))
}

/// The file, or 304 when the request's `If-None-Match` names its current `ETag`.
fn serve(req: &HttpRequest, asset: &Asset, etag: &str) -> HttpResponse {
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if unchanged {
        return response.finish();
    }
    response.content_type(asset.content_type).body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_name_is_unique_and_the_page_loads_the_app_as_a_module() {
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        assert!(
            INDEX
                .body
                .contains(r#"<script type="module" src="/assets/app.js"></script>"#)
        );
    }

    #[test]
    fn every_module_the_client_imports_is_served() {
        let mut imported = 0;
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            // `from './x.js'` anywhere (an import may span lines), in either quote.
            for (_, rest) in asset
                .body
                .match_indices("from ")
                .map(|(i, _)| asset.body.split_at(i + 5))
            {
                let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                    continue;
                };
                let Some(path) = rest[1..]
                    .split(quote)
                    .next()
                    .and_then(|p| p.strip_prefix("./"))
                else {
                    continue;
                };
                imported += 1;
                assert!(
                    ASSETS.iter().any(|a| a.name == path),
                    "{} imports {path}, which is not embedded",
                    asset.name
                );
            }
        }
        assert!(
            imported >= 4,
            "the client's modules import each other: {imported} found"
        );
    }
}
