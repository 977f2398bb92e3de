-- A direct conversation carries `direct_key`, its two member ids in sorted order, so the
-- unique index guarantees at most one direct conversation per pair of users.
CREATE TABLE conversations (
    id               TEXT PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    name             TEXT,
    direct_key       TEXT UNIQUE,
    created_by       TEXT NOT NULL REFERENCES users (id),
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    last_message_seq BIGINT,
    last_activity_at TIMESTAMP NOT NULL,
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
    CHECK ((kind = 'group') = (name IS NOT NULL))
);

-- Membership and the member's read marker: every message with seq <= last_read_seq is read.
CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id),
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at       TIMESTAMP NOT NULL,
    last_read_seq   BIGINT NOT NULL DEFAULT 0,
    read_at         TIMESTAMP,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;

-- "Which conversations is this user in": the inbox, unread counts and catch-up start here.
CREATE INDEX conversation_members_by_user ON conversation_members (user_id, conversation_id);
CREATE INDEX conversations_by_activity ON conversations (last_activity_at DESC);
