-- No query reads conversations in global activity order (the inbox sorts one user's few
-- conversations), yet every message moved its conversation in this index: one more page
-- written per conversation per commit, for nothing.
DROP INDEX conversations_by_activity;
