DROP INDEX conversation_members_by_delivered;
ALTER TABLE conversation_members DROP COLUMN delivered_seq;
ALTER TABLE conversation_members DROP COLUMN last_delivered_seq;
