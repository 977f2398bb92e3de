-- Fails if a sender has used one key in two conversations since: those messages are distinct
-- and the older index cannot hold them both.
DROP INDEX messages_by_client_id;
CREATE UNIQUE INDEX messages_by_client_id ON messages (sender_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
