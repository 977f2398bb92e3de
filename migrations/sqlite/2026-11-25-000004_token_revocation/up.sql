-- Tokens carry the user's generation when issued; raising it revokes every earlier token.
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;

-- Tokens revoked one by one (logout), kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    token_id   TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
