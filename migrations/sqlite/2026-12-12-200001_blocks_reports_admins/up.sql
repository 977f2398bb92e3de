-- Blocking, reports and server admins (issue #17).

-- `blocker_id` has blocked `blocked_id`. The primary key serves "whom has this user blocked";
-- the second index serves "which of these users have blocked this one", which a direct
-- message asks as it is stored.
CREATE TABLE blocks (
    blocker_id TEXT NOT NULL REFERENCES users (id),
    blocked_id TEXT NOT NULL REFERENCES users (id),
    blocked_at TIMESTAMP NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id);

-- Server admins: granted from the command line only.
CREATE TABLE server_admins (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users (id)
);

-- Every admin action, in order. `actor_id` NULL: the command line.
CREATE TABLE admin_audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id TEXT REFERENCES users (id),
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    detail   TEXT NOT NULL,
    at       TIMESTAMP NOT NULL
);

-- Reports of a message or of a user, for the server admins. `subject_id` is whom the report
-- is about: the reported user, or the reported message's sender (`message_id` then set).
CREATE TABLE reports (
    id          TEXT PRIMARY KEY NOT NULL,
    reporter_id TEXT NOT NULL REFERENCES users (id),
    message_id  TEXT REFERENCES messages (id),
    subject_id  TEXT NOT NULL REFERENCES users (id),
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open',
    created_at  TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    resolved_by TEXT REFERENCES users (id),
    note        TEXT
);
-- The admins' list, by status, newest first.
CREATE INDEX reports_by_status ON reports (status, created_at);
