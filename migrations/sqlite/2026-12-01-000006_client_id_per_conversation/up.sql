-- A retry key identifies one message in one conversation: the same key sent to another
-- conversation is another message. Every pair the old index kept apart stays apart.
DROP INDEX messages_by_client_id;
CREATE UNIQUE INDEX messages_by_client_id
    ON messages (conversation_id, sender_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
