-- Full-text search over messages: an FTS5 index of `messages.content` that stores no copy of
-- the text (external content: the text is read from `messages` by rowid, which is `seq`).
-- Words are the runs of letters and digits, compared ignoring case and diacritics.
--
-- The conversation id is indexed too (as the words of the UUID), never searched by a user's
-- terms (their query is confined to `content`) but by the store, which narrows a search to
-- the caller's conversations inside the index: a common word then costs a walk of the
-- caller's share of its hits rather than of all of them (crates/chat-sqlite/src/search.rs).
CREATE VIRTUAL TABLE messages_search USING fts5 (
    content,
    conversation_id,
    content = 'messages',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- FTS5's 'secure-delete' option (which would erase a deleted message's words from the
-- index's pages at once rather than when its segments next merge) is NOT set: with SQLite
-- 3.46.0, as bundled, an edit through the server then left the index malformed
-- (`PRAGMA integrity_check`, see the crash test in crates/chat-server/tests/api/binary.rs).
-- The index keeps no text, only which message holds which word; a purged message's entries
-- stop matching at once and leave the file as segments merge.

-- The index follows every write to `messages` in the write's own transaction: an edit
-- replaces the message's words, a delete for everyone (content overwritten with '') removes
-- them.
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_search (rowid, content, conversation_id)
        VALUES (new.seq, new.content, new.conversation_id);
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, content, conversation_id)
        VALUES ('delete', old.seq, old.content, old.conversation_id);
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF content ON messages
WHEN old.content IS NOT new.content BEGIN
    INSERT INTO messages_search (messages_search, rowid, content, conversation_id)
        VALUES ('delete', old.seq, old.content, old.conversation_id);
    INSERT INTO messages_search (rowid, content, conversation_id)
        VALUES (new.seq, new.content, new.conversation_id);
END;

-- The messages stored before this migration.
INSERT INTO messages_search (messages_search) VALUES ('rebuild');
