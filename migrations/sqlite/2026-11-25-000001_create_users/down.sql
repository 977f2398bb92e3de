DROP TABLE server_settings;
DROP TABLE users;
