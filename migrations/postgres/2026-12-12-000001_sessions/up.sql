-- Login sessions (issue #17). A row is one login: the family of every refresh token rotated
-- from it, kept by the SHA-256 of the current one only (`refresh_hash`). Ended sessions stay
-- until they expire, so a spent token of theirs is still told apart from a forged one; every
-- login deletes the rows that have expired.
CREATE TABLE sessions (
    id             UUID PRIMARY KEY NOT NULL,
    user_id        UUID NOT NULL REFERENCES users (id),
    refresh_hash   TEXT NOT NULL,
    device         TEXT,
    client_address TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    last_used_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    -- The user's token generation at login.
    generation     BIGINT NOT NULL,
    revoked        BOOLEAN NOT NULL DEFAULT FALSE
);
-- A user's sessions.
CREATE INDEX sessions_by_user ON sessions (user_id);
-- The sweep of expired sessions.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
