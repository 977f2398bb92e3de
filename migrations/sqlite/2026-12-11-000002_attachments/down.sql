DROP TABLE blobs;
DROP TABLE attachments;
