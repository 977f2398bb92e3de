DROP TABLE thread_participants;
DROP TABLE threads;
DROP INDEX messages_by_thread;
ALTER TABLE messages DROP COLUMN thread_root_id;
