-- Threads. A thread reply names its root; NULL: a message of the conversation's main history.
-- Replies are read by (thread_root_id, seq); main-history messages cost nothing more.
ALTER TABLE messages ADD COLUMN thread_root_id TEXT REFERENCES messages (id);
CREATE INDEX messages_by_thread ON messages (thread_root_id, seq)
    WHERE thread_root_id IS NOT NULL;
-- A thread's counters, kept by each reply's append so that reading a root's summary counts
-- nothing: every reply (deleted ones too), and the newest one's seq and time. No row: the
-- message has no replies.
CREATE TABLE threads (
    root_id TEXT PRIMARY KEY NOT NULL REFERENCES messages (id),
    reply_count BIGINT NOT NULL,
    last_reply_seq BIGINT NOT NULL,
    last_reply_at TIMESTAMP NOT NULL
);
-- Who follows a thread: its root's sender and everyone who replied in it (or was added,
-- e.g. mentioned), in the order they joined (`joined_seq`: the seq of the message that
-- made them a participant, the root's for its sender). Rows are only ever added.
CREATE TABLE thread_participants (
    root_id TEXT NOT NULL REFERENCES threads (root_id),
    user_id TEXT NOT NULL REFERENCES users (id),
    joined_seq BIGINT NOT NULL,
    PRIMARY KEY (root_id, user_id)
);
