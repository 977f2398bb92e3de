DROP TABLE message_seq;
DROP TABLE messages;
DROP TABLE conversation_members;
DROP TABLE conversations;
DROP TABLE revoked_tokens;
DROP TABLE server_settings;
DROP TABLE users;
