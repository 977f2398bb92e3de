//! Files: uploading one (multipart) to send with a message, and downloading it back.

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method};
use uuid::Uuid;

use crate::types::{Attachment, Download};
use crate::{Client, Error};

impl Client {
    /// Uploads a file named `file_name`; send the answer's `id` in
    /// [`NewMessage::attachments`](crate::types::NewMessage::attachments). The server reads
    /// the type from the bytes. Fails with `413 payload_too_large` / `quota_exceeded`,
    /// `415 unsupported_media_type`, or `422 image_too_large` / `image_corrupt`.
    pub async fn upload(
        &self,
        file_name: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<Attachment, Error> {
        let bytes: Bytes = bytes.into();
        // Built anew for each attempt (a refresh may resend it); `Bytes` clones share the
        // buffer.
        let form = || {
            let part = Part::stream_with_length(Body::from(bytes.clone()), bytes.len() as u64)
                .file_name(file_name.to_owned());
            Form::new().part("file", part)
        };
        let response = self
            .authorized_with(Method::POST, "api/v1/attachments", |request| {
                request.multipart(form())
            })
            .await?;
        crate::client::decode(response).await
    }

    /// Downloads a file: yours, or one sent in a conversation you are in (anything else is
    /// `404`, as a missing one).
    pub async fn download(&self, attachment_id: Uuid) -> Result<Download, Error> {
        self.fetch_file(&format!("api/v1/attachments/{attachment_id}"))
            .await
    }

    /// Downloads an image's thumbnail (`404` for a file without one).
    pub async fn thumbnail(&self, attachment_id: Uuid) -> Result<Download, Error> {
        self.fetch_file(&format!("api/v1/attachments/{attachment_id}/thumbnail"))
            .await
    }

    async fn fetch_file(&self, path: &str) -> Result<Download, Error> {
        let response = self.authorized(Method::GET, path, None::<&()>).await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await?.to_vec();
        Ok(Download {
            bytes,
            content_type,
        })
    }
}
