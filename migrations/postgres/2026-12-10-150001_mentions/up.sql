-- Who a message mentions (`@username`, `@all` in a group), decided among the conversation's
-- members when its content is stored: one row per mentioned member, replaced by an edit and
-- dropped by a delete for everyone. `seq` is the message's own seq, so a member's unread
-- mentions are a range scan past their read marker on the index below.
CREATE TABLE message_mentions (
    message_id      UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users (id),
    seq             BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX message_mentions_unread ON message_mentions (user_id, conversation_id, seq);
