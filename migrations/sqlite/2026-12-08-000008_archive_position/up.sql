-- Where a member's archive holds from: the seq its archiving took. The conversation counts
-- as archived only while no message newer than that exists (or while it is muted), so a new
-- message brings it back to the inbox without the append touching the membership rows.
-- NULL: not archived (`archived` is kept equal to `archived_seq IS NOT NULL`).
ALTER TABLE conversation_members ADD COLUMN archived_seq INTEGER;
