-- The whole schema for PostgreSQL, as migrations/sqlite/ leaves SQLite's, in PostgreSQL's own
-- types. Several chat-server nodes share this database.

-- Usernames, emails and full names compare byte-wise (COLLATE "C"), so that `lower()` folds
-- ASCII letters only, exactly as SQLite's NOCASE and LIKE do: the same names collide, the
-- same searches match and lists sort the same on either store.
CREATE TABLE users (
    id               UUID PRIMARY KEY,
    username         TEXT COLLATE "C" NOT NULL,
    email            TEXT COLLATE "C" NOT NULL,
    password_hash    TEXT NOT NULL,
    full_name        TEXT COLLATE "C",
    avatar_url       TEXT,
    bio              TEXT,
    is_active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    -- Tokens carry the user's generation when issued; raising it revokes every earlier token.
    token_generation BIGINT NOT NULL DEFAULT 0
);
-- Unique regardless of case; the lookups by name use these indexes.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Server-wide settings that must survive restarts, such as the generated token secret.
CREATE TABLE server_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Tokens revoked one by one (logout), kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    token_id   TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

-- A direct conversation carries `direct_key`, its two member ids in sorted order, so the
-- unique constraint guarantees at most one direct conversation per pair of users.
CREATE TABLE conversations (
    id               UUID PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    name             TEXT,
    direct_key       TEXT CONSTRAINT conversations_direct_key_key UNIQUE,
    created_by       UUID NOT NULL REFERENCES users (id),
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    last_message_seq BIGINT,
    last_activity_at TIMESTAMPTZ NOT NULL,
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
    CHECK ((kind = 'group') = (name IS NOT NULL))
);

-- Membership and the member's read marker: every message with seq <= last_read_seq is read.
CREATE TABLE conversation_members (
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users (id),
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at       TIMESTAMPTZ NOT NULL,
    last_read_seq   BIGINT NOT NULL DEFAULT 0,
    read_at         TIMESTAMPTZ,
    PRIMARY KEY (conversation_id, user_id)
);
-- "Which conversations is this user in": the inbox, unread counts and catch-up start here.
CREATE INDEX conversation_members_by_user ON conversation_members (user_id, conversation_id);

-- `seq` is the server-wide order of messages, handed out from `message_seq` (below) in commit
-- order, so "everything after seq N" is an exact catch-up on every node.
CREATE TABLE messages (
    seq               BIGINT PRIMARY KEY,
    id                UUID NOT NULL UNIQUE,
    conversation_id   UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id         UUID NOT NULL REFERENCES users (id),
    content           TEXT NOT NULL,
    client_message_id TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
-- History pages and unread counts are range scans of one conversation by seq.
CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);
-- A retry key identifies one message in one conversation: retries return the stored message.
CREATE UNIQUE INDEX messages_by_client_id
    ON messages (conversation_id, sender_id, client_message_id)
    WHERE client_message_id IS NOT NULL;

-- The last seq handed out. Its one row is locked by each append transaction from the moment
-- it takes seqs until it commits, so seqs are handed out in commit order across every node.
CREATE TABLE message_seq (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    last     BIGINT NOT NULL
);
INSERT INTO message_seq (only_row, last) VALUES (TRUE, 0);
