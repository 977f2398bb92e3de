-- Delivered receipts: how far each member's devices have received each conversation (a
-- message reaching one of their sockets, or fetched by them). Only ever moves forward, and
-- only past the read marker too (reading is receiving, so every read shows the higher of
-- the two). `delivered_seq` is the marker's latest move's position in the change feed,
-- taken from the counter messages take theirs from; NULL: never moved.
ALTER TABLE conversation_members ADD COLUMN last_delivered_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversation_members ADD COLUMN delivered_seq INTEGER;
-- The change feed reads every member's delivered marker moved after a position, in each of
-- the reader's conversations: a range of this index per conversation.
CREATE INDEX conversation_members_by_delivered ON conversation_members (conversation_id, delivered_seq)
    WHERE delivered_seq IS NOT NULL;
