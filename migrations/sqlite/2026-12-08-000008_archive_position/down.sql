ALTER TABLE conversation_members DROP COLUMN archived_seq;
