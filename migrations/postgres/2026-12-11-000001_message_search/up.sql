-- Full-text search over messages: each message's words, kept by PostgreSQL itself as the
-- content is written (a generated column: an edit replaces them, a delete for everyone, which
-- overwrites the content with '', removes them), and a GIN index over them.
--
-- Words are the runs of letters and digits, compared ignoring case, as in the SQLite store:
-- everything else becomes a space before the 'simple' configuration (no stemming, no stop
-- words: chat is multilingual) reads the text, so that its parser, which would keep
-- `deploy.prod` or `a@b.com` as one word, sees only plain words.
ALTER TABLE messages ADD COLUMN content_words tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, regexp_replace(content, '[^[:alnum:]]+', ' ', 'g'))
) STORED;
CREATE INDEX messages_by_words ON messages USING gin (content_words);
