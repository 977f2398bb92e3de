//! Uploads: keeping a received file (its type read from its bytes, the allow-list, the quota,
//! an image's dimensions and thumbnail), deciding who may download it, and removing what is
//! no longer needed. Attaching an upload to a message is the message store's write (see
//! [`crate::message::NewMessage::attachment_ids`]); this service never touches messages.

use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Ports, Throttle, UploadPorts};
use crate::attachment::{Attachment, BlobKey, StagedUpload, Thumbnail, UploadLimits, is_image};
use crate::limits::Limits;
use crate::ports::{AttachmentStore, BlobStore, Clock, ConversationStore, MediaInspector};
use crate::{AttachmentId, DomainError, Resource, StoreError, UserId};

/// Which bytes of an attachment to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The file as uploaded.
    Original,
    /// An image's thumbnail.
    Thumbnail,
}

/// What a download serves: the type, length and entity tag of the bytes asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub attachment: Attachment,
    pub content_type: String,
    pub size: u64,
    /// The bytes' SHA-256 (their blob key).
    pub key: BlobKey,
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Swept {
    pub uploads: u64,
    pub blobs: u64,
}

#[derive(Clone)]
pub struct AttachmentService {
    throttle: Throttle,
    limits: Limits,
    upload_limits: Arc<UploadLimits>,
    attachments: Arc<dyn AttachmentStore>,
    blobs: Arc<dyn BlobStore>,
    media: Arc<dyn MediaInspector>,
    conversations: Arc<dyn ConversationStore>,
    clock: Arc<dyn Clock>,
    digest: fn(&[u8]) -> BlobKey,
}

impl AttachmentService {
    /// Blobs one sweep removes at most; the next sweep takes the rest.
    const SWEEP_BATCH: u32 = 1000;

    pub fn new(ports: &Ports, uploads: UploadPorts) -> Self {
        Self {
            throttle: Throttle::new(ports),
            limits: ports.limits,
            upload_limits: Arc::new(uploads.limits),
            attachments: uploads.attachments,
            blobs: uploads.blobs,
            media: uploads.media,
            conversations: ports.conversations.clone(),
            clock: ports.clock.clone(),
            digest: uploads.digest,
        }
    }

    pub fn limits(&self) -> &UploadLimits {
        &self.upload_limits
    }

    /// Takes one upload from the user's budget (the messages' one: an upload is sent next).
    /// The edge calls it before it reads the body.
    pub fn admit(&self, user: UserId) -> Result<(), DomainError> {
        self.throttle
            .acquire(&format!("upload:{user}"), self.limits.messages_per_user)
    }

    /// Keeps a staged file as the user's upload: its type sniffed from its bytes (unknown
    /// bytes are `application/octet-stream`, UTF-8 text `text/plain`) and checked against the
    /// allow-list ([`DomainError::UnsupportedMediaType`]); the user's quota
    /// ([`DomainError::QuotaExceeded`]); an image's dimensions and thumbnail, made without
    /// decoding an image of too many pixels ([`DomainError::ImageRefused`]). The bytes go to
    /// the blob store under their SHA-256, so identical bytes are kept once. Blocks (disk,
    /// image decoding). The staged file may have been moved away afterwards; the caller
    /// removes it if it is still there.
    pub fn upload(&self, user: UserId, staged: StagedUpload) -> Result<Attachment, DomainError> {
        let limits = &self.upload_limits;
        if staged.size > limits.max_bytes {
            return Err(DomainError::PayloadTooLarge {
                max_bytes: limits.max_bytes,
            });
        }
        let content_type = self.content_type(&staged.head);
        if !limits.allowed.allows(&content_type) {
            return Err(DomainError::UnsupportedMediaType(content_type));
        }
        // A cheap early refusal; the insert checks again, atomically.
        let used = self.attachments.used_bytes(user)?;
        if used.saturating_add(staged.size) > limits.quota_bytes {
            return Err(DomainError::QuotaExceeded {
                quota_bytes: limits.quota_bytes,
            });
        }
        let image = if is_image(&content_type) {
            Some(self.media.image(
                &staged.path,
                &content_type,
                limits.thumbnail_side,
                limits.max_pixels,
            )?)
        } else {
            None
        };
        let now = self.clock.now();
        // The blob is recorded before its bytes go in: a sweep on any node then leaves it.
        self.attachments.touch_blob(&staged.key, staged.size, now)?;
        self.blobs.put(&staged.key, &staged.path)?;
        let mut attachment = Attachment {
            id: AttachmentId::new(),
            uploader_id: user,
            name: staged.name,
            size: staged.size,
            content_type,
            blob_key: staged.key,
            width: None,
            height: None,
            thumbnail: None,
            created_at: now,
            message_id: None,
            conversation_id: None,
        };
        if let Some(image) = image {
            attachment.width = Some(image.width);
            attachment.height = Some(image.height);
            if let Some((bytes, content_type)) = image.thumbnail {
                let key = (self.digest)(&bytes);
                let size = bytes.len() as u64;
                self.attachments.touch_blob(&key, size, now)?;
                self.blobs.put_bytes(&key, &bytes)?;
                attachment.thumbnail = Some(Thumbnail {
                    key,
                    content_type: content_type.to_owned(),
                    size,
                });
            }
        }
        if !self
            .attachments
            .insert_upload(&attachment, limits.quota_bytes)?
        {
            return Err(DomainError::QuotaExceeded {
                quota_bytes: limits.quota_bytes,
            });
        }
        Ok(attachment)
    }

    /// The content type the bytes show, as [`crate::ports::MediaInspector::sniff`] reads it,
    /// else `text/plain` for UTF-8 text (no NUL) and `application/octet-stream` for the rest.
    fn content_type(&self, head: &[u8]) -> String {
        if let Some(sniffed) = self.media.sniff(head) {
            return sniffed.to_owned();
        }
        // The head may end inside a character: only an invalid sequence before the end counts.
        let text = match std::str::from_utf8(head) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
        if text && !head.is_empty() && !head.contains(&0) {
            "text/plain".to_owned()
        } else {
            "application/octet-stream".to_owned()
        }
    }

    /// What `viewer` may download of the attachment `id`: anything of their own upload, and
    /// of one attached to a message, while they are a member of its conversation. Anything
    /// else is [`DomainError::NotFound`], exactly as a missing one, so nobody learns that an
    /// id exists. A thumbnail the attachment does not have is not found either.
    pub fn served(
        &self,
        viewer: UserId,
        id: AttachmentId,
        variant: Variant,
    ) -> Result<Served, DomainError> {
        let not_found = || DomainError::not_found(Resource::Attachment, id);
        let attachment = self.attachments.find_upload(id)?.ok_or_else(not_found)?;
        let visible = attachment.uploader_id == viewer
            || match attachment.conversation_id {
                Some(conversation) => self
                    .conversations
                    .membership(conversation, viewer)?
                    .is_some(),
                None => false,
            };
        if !visible {
            return Err(not_found());
        }
        let (content_type, size, key) = match (variant, &attachment.thumbnail) {
            (Variant::Original, _) => (
                attachment.content_type.clone(),
                attachment.size,
                attachment.blob_key.clone(),
            ),
            (Variant::Thumbnail, Some(thumbnail)) => (
                thumbnail.content_type.clone(),
                thumbnail.size,
                thumbnail.key.clone(),
            ),
            (Variant::Thumbnail, None) => return Err(not_found()),
        };
        Ok(Served {
            attachment,
            content_type,
            size,
            key,
        })
    }

    /// A reader of the served bytes in `range` (all when `None`). Blocks; the reader
    /// streams. Bytes missing from the blob store are a store failure, not the caller's.
    pub fn open(
        &self,
        served: &Served,
        range: Option<Range<u64>>,
    ) -> Result<Box<dyn Read + Send>, DomainError> {
        self.blobs.open(&served.key, range)?.ok_or_else(|| {
            StoreError::Unavailable(format!("blob {} is missing", served.key)).into()
        })
    }

    /// Removes uploads never attached that are older than the limit, then the bytes of blobs
    /// nothing references any more (after the grace period). Safe on several nodes at once.
    /// Blocks.
    pub fn sweep(&self, now: DateTime<Utc>) -> Result<Swept, DomainError> {
        let limits = &self.upload_limits;
        let ttl =
            chrono::Duration::from_std(limits.unattached_ttl).unwrap_or(chrono::Duration::MAX);
        let grace = chrono::Duration::from_std(limits.blob_grace).unwrap_or(chrono::Duration::MAX);
        let uploads = self
            .attachments
            .remove_unattached(now.checked_sub_signed(ttl).unwrap_or(now))?;
        let mut blobs = 0;
        loop {
            let keys = self.attachments.take_unreferenced_blobs(
                now.checked_sub_signed(grace).unwrap_or(now),
                Self::SWEEP_BATCH,
            )?;
            for key in &keys {
                self.blobs.delete(key)?;
            }
            blobs += keys.len() as u64;
            if keys.len() < Self::SWEEP_BATCH as usize {
                break;
            }
        }
        Ok(Swept { uploads, blobs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attachment::FileName;
    use crate::fakes::{World, fake_digest};
    use crate::service::{CreateConversation, SendMessage};

    /// A staged file holding `bytes`, in a fresh temporary directory.
    fn staged(bytes: &[u8], name: &str) -> StagedUpload {
        let dir = std::env::temp_dir().join(format!("chat-domain-{}", AttachmentId::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("staged");
        std::fs::write(&path, bytes).unwrap();
        StagedUpload {
            path,
            size: bytes.len() as u64,
            key: fake_digest(bytes),
            head: bytes[..bytes.len().min(8192)].to_vec(),
            name: FileName::parse(name),
        }
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\nrest of an image";

    #[test]
    fn the_type_is_read_from_the_bytes_not_the_name() {
        let world = World::new();
        let alice = world.user("alice");
        let upload = |bytes: &[u8], name| world.attachments.upload(alice, staged(bytes, name));
        assert_eq!(upload(PNG, "x.exe").unwrap().content_type, "image/png");
        assert_eq!(
            upload("héllo\n".as_bytes(), "x.png").unwrap().content_type,
            "text/plain"
        );
        // Unknown binary bytes are octet-stream, which the default list does not allow.
        let refused = upload(&[0, 159, 146, 150], "x.txt").unwrap_err();
        assert!(
            matches!(&refused, DomainError::UnsupportedMediaType(t) if t == "application/octet-stream"),
            "{refused:?}"
        );
    }

    #[test]
    fn an_image_gets_its_dimensions_and_a_thumbnail_blob_and_bytes_are_kept_once() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        let first = world
            .attachments
            .upload(alice, staged(PNG, "a.png"))
            .unwrap();
        let second = world.attachments.upload(bob, staged(PNG, "b.png")).unwrap();
        assert_eq!((first.width, first.height), (Some(1000), Some(500)));
        let thumbnail = first.thumbnail.clone().unwrap();
        assert_eq!(thumbnail.key, fake_digest(b"thumb"));
        assert_eq!(first.blob_key, second.blob_key);
        assert_eq!(
            world.blobs.0.lock().unwrap().len(),
            2,
            "one file, one thumbnail"
        );
    }

    #[test]
    fn the_quota_and_the_size_limit_refuse_an_upload() {
        let world = World::new();
        let alice = world.user("alice");
        let limits = world.attachments.limits().clone();
        let mut big = staged(b"text", "big.txt");
        big.size = limits.max_bytes + 1;
        assert!(matches!(
            world.attachments.upload(alice, big),
            Err(DomainError::PayloadTooLarge { .. })
        ));
        let mut near = world
            .attachments
            .upload(alice, staged(b"text", "near.txt"))
            .unwrap();
        // Another upload fills the quota to two bytes short.
        near.id = AttachmentId::new();
        near.size = limits.quota_bytes - 6;
        assert!(
            world
                .store
                .insert_upload(&near, limits.quota_bytes)
                .unwrap()
        );
        let over = world.attachments.upload(alice, staged(b"text", "over.txt"));
        assert!(
            matches!(over, Err(DomainError::QuotaExceeded { .. })),
            "{over:?}"
        );
    }

    #[test]
    fn only_the_uploader_and_members_where_it_was_sent_may_download() {
        let world = World::new();
        let (alice, bob, eve) = (world.user("alice"), world.user("bob"), world.user("eve"));
        let upload = world
            .attachments
            .upload(alice, staged(PNG, "a.png"))
            .unwrap();
        let seen = |user| world.attachments.served(user, upload.id, Variant::Original);
        assert!(seen(alice).is_ok());
        assert!(
            matches!(seen(bob), Err(DomainError::NotFound { .. })),
            "not sent yet"
        );
        let group = world
            .services
            .conversations
            .create(
                alice,
                CreateConversation {
                    participant_ids: vec![bob],
                    name: Some("team".into()),
                    is_group: None,
                },
            )
            .unwrap()
            .0
            .conversation
            .id;
        world
            .services
            .messages
            .send(
                alice,
                group,
                SendMessage {
                    content: "look".into(),
                    attachment_ids: vec![upload.id],
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(seen(bob).is_ok());
        assert!(matches!(seen(eve), Err(DomainError::NotFound { .. })));
        let thumbnail = world
            .attachments
            .served(bob, upload.id, Variant::Thumbnail)
            .unwrap();
        let mut bytes = Vec::new();
        world
            .attachments
            .open(&thumbnail, Some(1..3))
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes, b"hu");
    }

    #[test]
    fn the_sweep_removes_old_unattached_uploads_and_then_their_bytes() {
        let world = World::new();
        let alice = world.user("alice");
        let upload = world
            .attachments
            .upload(alice, staged(b"notes", "n.txt"))
            .unwrap();
        let day_later = upload.created_at + chrono::Duration::hours(25);
        let swept = world.attachments.sweep(day_later).unwrap();
        assert_eq!(
            swept,
            Swept {
                uploads: 1,
                blobs: 1
            }
        );
        assert!(world.blobs.0.lock().unwrap().is_empty());
        assert!(matches!(
            world
                .attachments
                .served(alice, upload.id, Variant::Original),
            Err(DomainError::NotFound { .. })
        ));
    }
}
