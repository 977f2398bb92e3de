-- Uploads (issue #16). A row is one user's upload of a file whose bytes are the blob
-- `blob_key` (their SHA-256: identical bytes are kept once whoever uploads them). Unattached
-- (`message_id` NULL) it is its uploader's only and the sweep removes it after a day;
-- attached, it goes with its message when that is deleted for everyone.
CREATE TABLE attachments (
    id              TEXT PRIMARY KEY NOT NULL,
    uploader_id     TEXT NOT NULL REFERENCES users (id),
    blob_key        TEXT NOT NULL,
    name            TEXT NOT NULL,
    size            BIGINT NOT NULL,
    content_type    TEXT NOT NULL,
    width           INTEGER,
    height          INTEGER,
    thumbnail_key   TEXT,
    thumbnail_type  TEXT,
    thumbnail_size  BIGINT,
    created_at      TIMESTAMP NOT NULL,
    message_id      TEXT REFERENCES messages (id),
    conversation_id TEXT REFERENCES conversations (id),
    -- The place in its message's list of attachments.
    position        INTEGER NOT NULL DEFAULT 0
);
-- A page's attachments, by message.
CREATE INDEX attachments_by_message ON attachments (message_id, position)
    WHERE message_id IS NOT NULL;
-- The sweep of unattached uploads, by age.
CREATE INDEX attachments_unattached ON attachments (created_at) WHERE message_id IS NULL;
-- A user's quota.
CREATE INDEX attachments_by_uploader ON attachments (uploader_id);
-- Whether a blob is still referenced.
CREATE INDEX attachments_by_blob ON attachments (blob_key);
CREATE INDEX attachments_by_thumbnail ON attachments (thumbnail_key)
    WHERE thumbnail_key IS NOT NULL;
-- Every blob put, and when last: an upload records its blob here before it puts the bytes,
-- and the sweep removes a blob (this row first, the bytes after) only when no attachment
-- references it and nobody put it for a grace period, so bytes another node has just put
-- are never taken from under its upload.
CREATE TABLE blobs (
    key         TEXT PRIMARY KEY NOT NULL,
    size        BIGINT NOT NULL,
    last_put_at TIMESTAMP NOT NULL
);
CREATE INDEX blobs_by_last_put ON blobs (last_put_at);
