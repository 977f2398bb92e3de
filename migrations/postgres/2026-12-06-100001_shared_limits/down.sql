DROP TABLE user_connections;
DROP TABLE chat_nodes;
DROP TABLE rate_limits;
