-- The change feed reads every member's read marker moved after a position, in each of the
-- reader's conversations: a range of this index per conversation, instead of a scan of
-- every membership row. Only markers that ever moved explicitly are in it, and a new
-- message (which moves its sender's marker without a position) never touches it.
CREATE INDEX conversation_members_by_marker ON conversation_members (conversation_id, marker_seq)
    WHERE marker_seq IS NOT NULL;
