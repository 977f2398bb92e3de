-- A reply stores only the id of the message it replies to, never a copy of its text: the
-- quote a reply shows (the original's sender and the start of its content) is read from the
-- original whenever the reply is read, so it follows edits, and a delete for everyone purges
-- it with the original. NULL: not a reply. Messages without one cost nothing more to append.
ALTER TABLE messages ADD COLUMN reply_to_id UUID REFERENCES messages (id);
