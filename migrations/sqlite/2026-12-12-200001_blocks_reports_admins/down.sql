DROP TABLE reports;
DROP TABLE admin_audit;
DROP TABLE server_admins;
DROP TABLE blocks;
