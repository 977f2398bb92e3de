//! Files attached to messages: what an upload is, the content address its bytes are kept
//! under, the name it is shown with, and the limits an upload is held to.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{AttachmentId, ConversationId, MessageId, UserId};

/// Where a blob's bytes are kept: the lowercase hex SHA-256 of those bytes, so that identical
/// bytes are stored once whoever uploads them (content addressing).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    /// A key from a SHA-256 digest.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        use std::fmt::Write;
        let mut hex = String::with_capacity(64);
        for byte in digest {
            let _ = write!(hex, "{byte:02x}");
        }
        Self(hex)
    }

    /// A key read back from storage: 64 lowercase hex digits, else `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an image upload shows: its size in pixels and its thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    /// The thumbnail's encoded bytes (longest side at most the side asked for; an image
    /// already that small is its own thumbnail and has none), and their content type.
    pub thumbnail: Option<(Vec<u8>, &'static str)>,
}

/// Why an image could not be inspected. Either way the upload is refused with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefused {
    /// More pixels than the limit (a decompression bomb, or just too large): refused from
    /// its header, never decoded.
    #[error("the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// The bytes claim an image type but do not decode as one.
    #[error("the image could not be decoded")]
    Corrupt,
}

/// An uploaded file. Its bytes are the blob `blob_key` (their SHA-256, so identical bytes
/// are kept once); an image also has its dimensions and, when larger than a thumbnail, a
/// thumbnail blob. Unattached it is visible to its uploader only; attached to a message
/// (which it then stays with), also to the current members of that message's conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub uploader_id: UserId,
    pub name: FileName,
    /// In bytes.
    pub size: u64,
    /// As sniffed from the bytes, never as the client said.
    pub content_type: String,
    /// Where the bytes are: their SHA-256 in hex, also the `sha256` clients see.
    pub blob_key: BlobKey,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub thumbnail: Option<Thumbnail>,
    pub created_at: DateTime<Utc>,
    /// The message it is attached to, and that message's conversation; `None` until sent.
    pub message_id: Option<MessageId>,
    pub conversation_id: Option<ConversationId>,
}

/// An image upload's thumbnail, kept as a blob of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub key: BlobKey,
    pub content_type: String,
    pub size: u64,
}

/// The content types served inline (shown by a browser in place): raster images only, which
/// cannot carry script. Everything else is served as a download.
pub const INLINE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// The image types whose dimensions are read and which get a thumbnail.
pub fn is_image(content_type: &str) -> bool {
    INLINE_TYPES.contains(&content_type)
}

/// A file's name as shown and offered for download: the last part of what the client sent
/// (no directories, so never a path), without control characters, at most
/// [`FileName::MAX_CHARS`] characters; `file` when nothing is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub const MAX_CHARS: usize = 255;

    /// Never fails: whatever the client sent becomes a harmless name.
    pub fn parse(raw: &str) -> Self {
        let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let cleaned: String = last
            .chars()
            .filter(|c| !c.is_control())
            .take(Self::MAX_CHARS)
            .collect();
        let trimmed = cleaned.trim();
        if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
            Self("file".to_owned())
        } else {
            Self(trimmed.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which content types an upload may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedTypes {
    /// Anything (`*`).
    All,
    /// Exactly these (lowercase MIME types); a pattern `type/*` allows every subtype.
    Only(Vec<String>),
}

impl AllowedTypes {
    /// Images, PDF, plain text, zip, common office documents, audio and video.
    pub fn sensible_default() -> Self {
        Self::parse(
            "image/jpeg,image/png,image/gif,image/webp,application/pdf,text/plain,\
             application/zip,application/msword,\
             application/vnd.openxmlformats-officedocument.wordprocessingml.document,\
             application/vnd.ms-excel,\
             application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,\
             application/vnd.ms-powerpoint,\
             application/vnd.openxmlformats-officedocument.presentationml.presentation,\
             application/vnd.oasis.opendocument.text,audio/*,video/*",
        )
    }

    /// A comma-separated list; `*` alone allows everything.
    pub fn parse(raw: &str) -> Self {
        if raw.trim() == "*" {
            return Self::All;
        }
        Self::Only(
            raw.split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    pub fn allows(&self, content_type: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.iter().any(|allowed| {
                allowed == content_type
                    || allowed.strip_suffix("/*").is_some_and(|major| {
                        content_type
                            .split_once('/')
                            .is_some_and(|(m, _)| m == major)
                    })
            }),
        }
    }
}

/// What an upload is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLimits {
    /// The largest file, in bytes (413 beyond it).
    pub max_bytes: u64,
    /// The bytes a user's uploads may add up to (those not removed yet).
    pub quota_bytes: u64,
    pub allowed: AllowedTypes,
    /// The thumbnail's longest side, in pixels.
    pub thumbnail_side: u32,
    /// Images with more pixels are refused from their header (decompression bombs).
    pub max_pixels: u64,
    /// An upload never attached to a message is removed after this long.
    pub unattached_ttl: Duration,
    /// A blob nothing references is removed once nobody has put it for this long, so bytes
    /// an upload on another node has just put are never taken from under it.
    pub blob_grace: Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 25 * 1024 * 1024,
            quota_bytes: 1024 * 1024 * 1024,
            allowed: AllowedTypes::sensible_default(),
            thumbnail_side: 320,
            max_pixels: 50_000_000,
            unattached_ttl: Duration::from_secs(24 * 3600),
            blob_grace: Duration::from_secs(3600),
        }
    }
}

/// The most attachments one message carries.
pub const MAX_PER_MESSAGE: usize = 10;

/// Why `attachment_ids` was refused, as a client is told.
pub const ATTACHMENT_IDS_RULE: &str =
    "must be at most 10 distinct ids of your own uploads not yet attached to a message";

/// A file received and written to local disk (staged), not kept yet: what
/// [`crate::service::AttachmentService::upload`] keeps.
#[derive(Debug, Clone)]
pub struct StagedUpload {
    pub path: std::path::PathBuf,
    pub size: u64,
    /// The SHA-256 of the bytes.
    pub key: BlobKey,
    /// The first bytes (up to a few KiB), for sniffing the type.
    pub head: Vec<u8>,
    /// The name the client gave.
    pub name: FileName,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_digest_in_lowercase_hex_and_parses_back() {
        let key = BlobKey::from_digest(&[0xab; 32]);
        assert_eq!(key.as_str(), "ab".repeat(32));
        assert_eq!(BlobKey::parse(key.as_str()), Some(key));
        assert_eq!(BlobKey::parse(&"AB".repeat(32)), None);
        assert_eq!(BlobKey::parse("../etc/passwd"), None);
        assert_eq!(BlobKey::parse(""), None);
    }

    #[test]
    fn a_file_name_keeps_no_path_and_no_control_characters() {
        assert_eq!(FileName::parse("../../etc/passwd").as_str(), "passwd");
        assert_eq!(
            FileName::parse("C:\\Users\\x\\report.pdf").as_str(),
            "report.pdf"
        );
        assert_eq!(FileName::parse("a\u{0}b\nc.txt").as_str(), "abc.txt");
        assert_eq!(FileName::parse("dir/").as_str(), "file");
        assert_eq!(FileName::parse("..").as_str(), "file");
        assert_eq!(
            FileName::parse(&"é".repeat(300)).as_str().chars().count(),
            255
        );
    }

    #[test]
    fn the_allow_list_takes_exact_types_wildcard_subtypes_and_star() {
        let allowed = AllowedTypes::parse("image/png, audio/*");
        assert!(allowed.allows("image/png"));
        assert!(allowed.allows("audio/mpeg"));
        assert!(!allowed.allows("image/svg+xml"));
        assert!(!allowed.allows("text/html"));
        assert!(AllowedTypes::parse("*").allows("text/html"));
        assert!(!AllowedTypes::sensible_default().allows("text/html"));
    }
}
