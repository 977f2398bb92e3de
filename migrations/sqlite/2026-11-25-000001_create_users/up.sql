-- Accounts. Usernames and emails are unique regardless of case (COLLATE NOCASE on the
-- column makes both the unique index and equality lookups case-insensitive).
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    full_name     TEXT,
    avatar_url    TEXT,
    bio           TEXT,
    is_active     BOOLEAN NOT NULL DEFAULT 1,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

-- Server-wide settings that must survive restarts, such as the generated token secret.
CREATE TABLE server_settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
