CREATE INDEX conversations_by_activity ON conversations (last_activity_at DESC);
