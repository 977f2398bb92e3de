//! Uploads and downloads of files (issue #16).
//!
//! An upload is streamed: each chunk of the multipart part `file` goes through a bounded
//! channel to one blocking writer (a [`chat_files::StagedFile`], which hashes and counts as it
//! writes), so memory stays flat whatever the size, and the upload is cut off as soon as it
//! passes the limit. A download streams the blob the same way, the other way round, with the
//! headers that keep an uploaded file from ever running in the API's origin (docs/security.md).

use std::io::{Read, Write};
use std::ops::Range;
use std::sync::Arc;

use actix_http::body::SizedStream;
use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
    HeaderValue,
};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use chat_domain::attachment::{FileName, INLINE_TYPES, StagedUpload};
use chat_domain::service::{AttachmentService, Served, Variant};
use chat_domain::{AttachmentId, DomainError, UserId};
use chat_files::{LimitExceeded, Staged, Staging};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::dto::attachments::AttachmentResponse;
use crate::error::{ApiError, ErrorBody};
use crate::routes::resource;
use crate::state::AppState;

/// What the upload and download routes need: the use case and where uploads are staged.
#[derive(Clone)]
pub struct Uploads {
    pub service: AttachmentService,
    pub staging: Arc<Staging>,
}

impl Uploads {
    /// Runs an upload use case on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AttachmentService) -> Result<T, DomainError> + Send + 'static,
    {
        let service = self.service.clone();
        Ok(web::block(move || f(&service)).await??)
    }
}

/// Room for the multipart framing around the file (boundaries, part headers, small fields).
const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// Chunks in flight between the socket and the disk, each of them at most what actix reads
/// at once: the memory an upload or a download holds, whatever its size.
const CHUNKS_IN_FLIGHT: usize = 8;
/// How much of a blob one read of a download takes.
const DOWNLOAD_CHUNK: usize = 128 * 1024;
/// How long a browser may reuse a download without asking: the bytes behind an id never
/// change, but who may see them can, so not forever and only in the user's own cache.
const CACHE_CONTROL: &str = "private, max-age=3600";
/// No script, no plugins, no same-origin access, whatever the bytes are (docs/security.md).
const SANDBOX: &str = "sandbox; default-src 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/attachments", "POST").route(web::post().to(upload)))
        .service(resource("/attachments/{attachment_id}", "GET").route(web::get().to(download)))
        .service(
            resource("/attachments/{attachment_id}/thumbnail", "GET")
                .route(web::get().to(thumbnail)),
        );
}

/// Upload a file.
///
/// A `multipart/form-data` body whose part `file` holds the bytes (and its file name). The
/// type is read from the bytes, never taken from the client: unknown bytes are
/// `application/octet-stream`, UTF-8 text `text/plain`. Identical bytes are stored once. An
/// image (JPEG, PNG, GIF, WebP) gets its dimensions and, when larger, a thumbnail (longest
/// side 320 px). Send the returned `id` in a message's `attachment_ids`; an upload never
/// attached to a message is removed after 24 hours. Only you can download it until then.
#[utoipa::path(
    post, path = "/api/v1/attachments", tag = "attachments",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, description = "Stored", body = AttachmentResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 413, description = "Larger than the limit (`payload_too_large`, answered as soon as the limit is passed), or past your storage quota (`quota_exceeded`)", body = ErrorBody,
            example = json!({"detail": "the file is larger than the limit of 26214400 bytes", "code": "payload_too_large"})),
        (status = 415, description = "The type read from the bytes is not accepted (`unsupported_media_type`)", body = ErrorBody,
            example = json!({"detail": "files of type text/html are not accepted", "code": "unsupported_media_type"})),
        (status = 422, description = "No part `file` (`validation_error`), or an image with too many pixels (`image_too_large`) or that does not decode (`image_corrupt`)", body = ErrorBody,
            example = json!({"detail": "the image is 100000x100000 pixels; at most 50000000 pixels are accepted", "code": "image_too_large"})),
        (status = 429, description = "Uploading too fast; see Retry-After", body = ErrorBody),
    )
)]
pub async fn upload(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let uploads = state.uploads.clone();
    let max_bytes = uploads.service.limits().max_bytes;
    // Refused before a byte is read when the client says it is too large.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(too_large(max_bytes));
    }
    let user_id = user.id;
    uploads.run(move |s| s.admit(user_id)).await?;
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut staged = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(bad_multipart)?;
        if field.name() != Some("file") || staged.is_some() {
            // Other parts are read past, but never kept, and count against the framing.
            let mut skipped = 0u64;
            while let Some(chunk) = field.next().await {
                skipped += chunk.map_err(bad_multipart)?.len() as u64;
                if skipped > MULTIPART_OVERHEAD {
                    return Err(too_large(max_bytes));
                }
            }
            continue;
        }
        let name = FileName::parse(
            field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .unwrap_or_default(),
        );
        staged = Some((stage(&uploads.staging, &mut field, max_bytes).await?, name));
    }
    let Some((staged, name)) = staged else {
        return Err(ApiError::validation(
            "file",
            "must be a part of the multipart/form-data body holding the file's bytes",
        ));
    };
    let attachment = uploads
        .run(move |s| {
            let upload = StagedUpload {
                path: staged.path.to_path_buf(),
                size: staged.size,
                key: staged.key.clone(),
                head: staged.head.clone(),
                name,
            };
            let kept = s.upload(user_id, upload);
            // The staged file goes now, on this blocking thread, if the store did not move it.
            drop(staged);
            kept
        })
        .await?;
    Ok(HttpResponse::Created().json(AttachmentResponse::from(&attachment)))
}

/// The multipart form of an upload, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(
    dead_code,
    reason = "documents the multipart body; the route streams it"
)]
pub struct UploadForm {
    /// The file's bytes, with its file name in the part's `Content-Disposition`.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Streams one part into a staged file on a blocking thread, through a bounded channel, and
/// stops reading as soon as the part passes `max_bytes`.
async fn stage(
    staging: &Arc<Staging>,
    field: &mut actix_multipart::Field,
    max_bytes: u64,
) -> Result<Staged, ApiError> {
    let (chunks, mut incoming) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let staging = staging.clone();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<Staged> {
        let mut file = staging.create(max_bytes)?;
        while let Some(chunk) = incoming.blocking_recv() {
            file.write_all(&chunk)?;
        }
        file.finish()
    });
    let mut received = 0u64;
    let mut refused = None;
    while let Some(chunk) = field.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                refused = Some(bad_multipart(error));
                break;
            }
        };
        received += chunk.len() as u64;
        if received > max_bytes {
            refused = Some(too_large(max_bytes));
            break;
        }
        if chunks.send(chunk).await.is_err() {
            // The writer stopped: its error says why.
            break;
        }
    }
    drop(chunks);
    let written = writer.await.map_err(|_| ApiError::internal());
    if let Some(refused) = refused {
        // Dropping the unfinished file removes it (on this thread: a small unlink).
        return Err(refused);
    }
    match written? {
        Ok(staged) => Ok(staged),
        Err(error) if LimitExceeded::in_error(&error).is_some() => Err(too_large(max_bytes)),
        Err(error) => {
            tracing::error!(%error, "staging an upload failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the file could not be stored; retry shortly",
            ))
        }
    }
}

fn too_large(max_bytes: u64) -> ApiError {
    DomainError::PayloadTooLarge { max_bytes }.into()
}

fn bad_multipart(error: actix_multipart::MultipartError) -> ApiError {
    ApiError::validation(
        "file",
        format!("must be sent as multipart/form-data: {error}"),
    )
}

/// Download a file.
///
/// For its uploader, and for the current members of the conversation it was sent in;
/// anyone else gets 404 as for a missing one. Supports `Range` (one range: 206) and
/// `If-None-Match` (the `ETag` is the SHA-256). Images (JPEG, PNG, GIF, WebP) are served
/// `inline`, everything else as a download (`Content-Disposition: attachment`), and always
/// with `X-Content-Type-Options: nosniff` and a sandboxing `Content-Security-Policy`, so an
/// uploaded HTML or SVG file never runs script in the API's origin.
#[utoipa::path(
    get, path = "/api/v1/attachments/{attachment_id}", tag = "attachments",
    params(("attachment_id" = Uuid, Path,), ("Range" = Option<String>, Header, example = "bytes=0-1023"),
        ("If-None-Match" = Option<String>, Header,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The bytes, as the content type read from them at upload (`application/octet-stream` for bytes of no known type)", content_type = "*/*", body = Vec<u8>),
        (status = 206, description = "The range asked for, with `Content-Range`", content_type = "*/*", body = Vec<u8>),
        (status = 304, description = "Unchanged since the `ETag` given in `If-None-Match`"),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such file, or not yours to see (`attachment_not_found`)", body = ErrorBody,
            example = json!({"detail": "attachment 0193a5c2-5555-7c3a-9d8e-2b4f6a1c0e55 not found", "code": "attachment_not_found"})),
        (status = 416, description = "The range lies outside the file (`range_not_satisfiable`)", body = ErrorBody),
        (status = 422, description = "`attachment_id` is no UUID (`validation_error`)", body = ErrorBody),
    )
)]
pub async fn download(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    serve(&state, user.id, path.into_inner(), Variant::Original, &req).await
}

/// Download an image's thumbnail.
///
/// As the file itself (same access, same headers); 404 for a file without a thumbnail.
#[utoipa::path(
    get, path = "/api/v1/attachments/{attachment_id}/thumbnail", tag = "attachments",
    params(("attachment_id" = Uuid, Path,)),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The thumbnail (JPEG, or PNG when it has transparency)",
            content((Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"))),
        (status = 304, description = "Unchanged since the `ETag` given in `If-None-Match`"),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 404, description = "No such file, not yours to see, or no thumbnail (`attachment_not_found`)", body = ErrorBody),
        (status = 422, description = "`attachment_id` is no UUID (`validation_error`)", body = ErrorBody),
    )
)]
pub async fn thumbnail(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    serve(&state, user.id, path.into_inner(), Variant::Thumbnail, &req).await
}

async fn serve(
    state: &AppState,
    viewer: UserId,
    id: Uuid,
    variant: Variant,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let uploads = state.uploads.clone();
    let id = AttachmentId::from(id);
    let served = uploads.run(move |s| s.served(viewer, id, variant)).await?;
    let etag = format!("\"{}\"", served.key);
    let mut response = HttpResponse::build(StatusCode::OK);
    response
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, SANDBOX))
        .insert_header(("Cross-Origin-Resource-Policy", "same-origin"))
        .insert_header((header::ACCEPT_RANGES, "bytes"));
    if matches_etag(req, &etag) {
        return Ok(response.status(StatusCode::NOT_MODIFIED).finish());
    }
    let size = served.size;
    let range = match requested_range(req, size) {
        Ok(range) => range,
        Err(()) => {
            let mut refused = actix_web::ResponseError::error_response(&ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {size} bytes"),
            ));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(refused);
        }
    };
    response
        .insert_header((header::CONTENT_TYPE, served.content_type.as_str()))
        .insert_header(disposition(&served));
    let length = match &range {
        Some(range) => {
            response.status(StatusCode::PARTIAL_CONTENT).insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", range.start, range.end - 1),
            ));
            range.end - range.start
        }
        None => size,
    };
    let reader = uploads.run(move |s| s.open(&served, range)).await?;
    Ok(response.body(SizedStream::new(length, stream(reader))))
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches_etag(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// The one range `Range` asks for, `None` for the whole file (no header, one that does not
/// parse, or several ranges: a server may answer those with the whole), `Err` when it asks
/// for nothing inside the file.
fn requested_range(req: &HttpRequest, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(raw) = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Ok(parsed) = http_range_header::parse_range_header(raw) else {
        return Ok(None);
    };
    if size == 0 {
        return Err(());
    }
    match parsed.validate(size).map_err(|_| ())?.as_slice() {
        [one] => Ok(Some(*one.start()..one.end() + 1)),
        _ => Ok(None),
    }
}

/// `inline` for the raster image types a browser shows as pictures, `attachment` (a
/// download) for everything else; the name encoded as RFC 6266 / 5987 say.
fn disposition(served: &Served) -> ContentDisposition {
    let inline = INLINE_TYPES.contains(&served.content_type.as_str());
    let name = served.attachment.name.as_str();
    ContentDisposition {
        disposition: if inline {
            DispositionType::Inline
        } else {
            DispositionType::Attachment
        },
        parameters: vec![DispositionParam::FilenameExt(ExtendedValue {
            charset: Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: name.as_bytes().to_vec(),
        })],
    }
}

/// The reader's bytes as a body stream: a blocking thread reads chunks into a bounded
/// channel, so a slow client holds at most a few chunks in memory.
fn stream(
    mut reader: Box<dyn Read + Send>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let (chunks, incoming) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buffer = vec![0u8; DOWNLOAD_CHUNK];
            let read = match reader.read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => read,
                Err(error) => {
                    tracing::error!(%error, "reading a blob failed");
                    let _ = chunks.blocking_send(Err(error));
                    return;
                }
            };
            buffer.truncate(read);
            if chunks.blocking_send(Ok(Bytes::from(buffer))).is_err() {
                // The client went away.
                return;
            }
        }
    });
    tokio_stream_of(incoming)
}

fn tokio_stream_of<T>(mut incoming: mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| incoming.poll_recv(cx))
}
