-- A WebSocket's claim of one of its user's slots (chat-postgres `connection_cap.rs`) in one
-- round trip instead of a transaction of four statements: during a mass reconnect every
-- socket makes one. The function is VOLATILE, so each statement in it takes a fresh snapshot:
-- the count read after the advisory lock includes every claim that held the lock before.
-- The lock is the transaction's, released when the calling statement's transaction ends.
-- `mine` is what the calling node holds for the user now; `lock_class` the advisory-lock
-- class of claims; `stale_ms` how long a silent node's counts still count.
CREATE FUNCTION chatd_claim_connection(
    claimant UUID, node UUID, mine INTEGER, cap BIGINT, lock_class INTEGER, stale_ms BIGINT
) RETURNS BOOLEAN LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    elsewhere BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, hashtext(claimant::text));
    SELECT coalesce(sum(c.connections), 0) INTO elsewhere
    FROM user_connections c JOIN chat_nodes n ON n.id = c.node_id
    WHERE c.user_id = claimant AND c.node_id <> node
      AND n.heartbeat_at > clock_timestamp() - stale_ms * interval '1 millisecond';
    IF elsewhere + mine >= cap THEN
        RETURN FALSE;
    END IF;
    INSERT INTO user_connections (user_id, node_id, connections) VALUES (claimant, node, mine + 1)
    ON CONFLICT (user_id, node_id) DO UPDATE SET connections = excluded.connections;
    RETURN TRUE;
END
$$;
