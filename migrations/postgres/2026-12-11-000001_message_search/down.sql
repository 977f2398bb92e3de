DROP INDEX messages_by_words;
ALTER TABLE messages DROP COLUMN content_words;
