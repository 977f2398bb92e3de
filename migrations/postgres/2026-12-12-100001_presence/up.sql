-- Presence (issue #17): when each user's last WebSocket closed (`last_seen_at`, shown while
-- they are offline) and whether they hide that time from others (who then see NULL, and
-- who then see NULL for everyone else's too). A user with no row was never seen and hides
-- nothing. A table of its own rather than columns on `users`: it is written at every last
-- disconnect, and `users` rows are read on every request.
CREATE TABLE user_presence (
    user_id        UUID PRIMARY KEY REFERENCES users (id),
    last_seen_at   TIMESTAMPTZ,
    hide_last_seen BOOLEAN NOT NULL DEFAULT FALSE
);
