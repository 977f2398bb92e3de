-- Full-text search over messages: an FTS5 index of `messages.content` that stores no copy of
-- the text (contentless: a search reads the messages it finds from `messages` by rowid,
-- which is `seq`). Words are the runs of letters and digits, compared ignoring case and
-- diacritics.
--
-- Beside the words, one token per message names its conversation: the last 12 hex digits of
-- the conversation's id (random in a UUID, so two of a server's conversations share one
-- hardly ever). A user's terms are confined to `content`; the store narrows a search to the
-- caller's conversations inside the index with this token (crates/chat-sqlite/src/search.rs),
-- so that a common word costs a walk of the caller's share of its hits rather than of all of
-- them, and then checks membership exactly. One token rather than the id's five words: every
-- token is paid for on every send (docs/benchmarks.md, "Issue #16").
--
-- `contentless_delete`: a message's entries are removed by its rowid alone, so an edit or a
-- delete for everyone need not repeat what was indexed.
CREATE VIRTUAL TABLE messages_search USING fts5 (
    content,
    conversation,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- The index follows every write to `messages` in the write's own transaction. New messages
-- are indexed by the store once per group-commit batch, in the batch's transaction, with one
-- statement (crates/chat-sqlite/src/search.rs, `index_appended`): a trigger would run once per
-- message on the single writer, where sending is paid for. An edit replaces the message's
-- words, a delete for everyone (content overwritten with '') removes the message from the
-- index: those triggers follow.
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_search WHERE rowid = old.seq;
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF content ON messages
WHEN old.content IS NOT new.content BEGIN
    DELETE FROM messages_search WHERE rowid = old.seq;
    INSERT INTO messages_search (rowid, content, conversation)
        SELECT new.seq, new.content, substr(new.conversation_id, 25) WHERE new.content <> '';
END;

-- The messages stored before this migration.
INSERT INTO messages_search (rowid, content, conversation)
    SELECT seq, content, substr(conversation_id, 25) FROM messages;
