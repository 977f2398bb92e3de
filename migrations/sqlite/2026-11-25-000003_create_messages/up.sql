-- `seq` is the server-wide order of messages. AUTOINCREMENT guarantees it only grows and is
-- never reused, even after deletes, so "everything after seq N" is an exact catch-up.
CREATE TABLE messages (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id         TEXT NOT NULL REFERENCES users (id),
    content           TEXT NOT NULL,
    client_message_id TEXT,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

-- History pages and unread counts are range scans of one conversation by seq.
CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);

-- A sender's client message id is stored once: retries return the stored message.
CREATE UNIQUE INDEX messages_by_client_id ON messages (sender_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
