-- What changes after a message is sent (edits, deletes, reactions, pins), what each member
-- sets for themselves (read marker, mute, archive), and where each change sits in the one
-- order every client catches up in.
--
-- A change takes its seq from the counter new messages take theirs from (`sqlite_sequence`'s
-- `messages` row, see crates/chat-sqlite/src/seq.rs), and the changed row keeps the seq of
-- its latest change. A catch-up "after seq N" therefore finds new messages by `seq` and
-- everything changed since by these `*_seq` columns: no log grows without bound, and a
-- client offline for a month catches up exactly, seeing each thing as it now stands.

-- The seq of the message's latest change (edit, delete, reaction, pin); NULL: never changed.
ALTER TABLE messages ADD COLUMN change_seq INTEGER;
ALTER TABLE messages ADD COLUMN edited_at TIMESTAMP;
-- A deleted message is a tombstone: its content is purged ('') and these say when and by whom.
ALTER TABLE messages ADD COLUMN deleted_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN deleted_by TEXT REFERENCES users (id);
ALTER TABLE messages ADD COLUMN pinned_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN pinned_by TEXT REFERENCES users (id);
CREATE INDEX messages_by_change ON messages (conversation_id, change_seq)
    WHERE change_seq IS NOT NULL;
CREATE INDEX messages_pinned ON messages (conversation_id, pinned_at)
    WHERE pinned_at IS NOT NULL;

-- One row per user, emoji and message reacted to.
CREATE TABLE reactions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

-- Messages a user deleted for themselves only; `seq` is the hiding's place in their catch-up.
CREATE TABLE hidden_messages (
    user_id         TEXT NOT NULL REFERENCES users (id),
    message_id      TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (user_id, message_id)
);
CREATE INDEX hidden_messages_by_seq ON hidden_messages (user_id, seq);

-- The seq of the latest move of the member's read marker (seen by every member), and of the
-- latest change to the member's own settings (seen by the member alone).
ALTER TABLE conversation_members ADD COLUMN marker_seq INTEGER;
ALTER TABLE conversation_members ADD COLUMN settings_seq INTEGER;
ALTER TABLE conversation_members ADD COLUMN muted_until TIMESTAMP;
ALTER TABLE conversation_members ADD COLUMN archived BOOLEAN NOT NULL DEFAULT FALSE;

-- The seq of the conversation's latest rename or membership change.
ALTER TABLE conversations ADD COLUMN change_seq INTEGER;

-- Members removed from a conversation: they see their own removal in their catch-up, and
-- nothing of the conversation after it. Re-adding and removing again moves `seq`.
CREATE TABLE departures (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id),
    seq             INTEGER NOT NULL,
    departed_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX departures_by_user ON departures (user_id, seq);
