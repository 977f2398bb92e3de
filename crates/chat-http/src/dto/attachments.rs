//! Uploaded files, as clients see them.

use chat_domain::attachment::Attachment;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An uploaded file: in the answer to an upload, and in every message that carries it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a5c2-5555-7c3a-9d8e-2b4f6a1c0e55",
    "name": "holiday.jpg",
    "size": 482113,
    "content_type": "image/jpeg",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "width": 4000,
    "height": 3000,
    "thumbnail_url": "/api/v1/attachments/0193a5c2-5555-7c3a-9d8e-2b4f6a1c0e55/thumbnail"
}))]
pub struct AttachmentResponse {
    pub id: Uuid,
    /// The file's name as uploaded, without any directory part or control characters.
    pub name: String,
    /// In bytes.
    pub size: u64,
    /// Read from the file's bytes, never taken from the client.
    pub content_type: String,
    /// The SHA-256 of the bytes, lowercase hex; also the download's `ETag`.
    pub sha256: String,
    /// An image's width in pixels; null for anything else.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Where an image's thumbnail (longest side 320 px) is downloaded; null when there is
    /// none (not an image, or an image that small already).
    pub thumbnail_url: Option<String>,
}

impl From<&Attachment> for AttachmentResponse {
    fn from(a: &Attachment) -> Self {
        Self {
            id: a.id.as_uuid(),
            name: a.name.as_str().to_owned(),
            size: a.size,
            content_type: a.content_type.clone(),
            sha256: a.blob_key.to_string(),
            width: a.width,
            height: a.height,
            thumbnail_url: a
                .thumbnail
                .as_ref()
                .map(|_| format!("/api/v1/attachments/{}/thumbnail", a.id)),
        }
    }
}
