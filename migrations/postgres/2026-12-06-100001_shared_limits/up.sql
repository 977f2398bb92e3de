-- Abuse limits and per-user connection caps that hold across every node (chat-postgres
-- `rate_limits.rs`, `connection_cap.rs`). Everything here is a budget or a count that is
-- rebuilt within seconds, so the tables are UNLOGGED: no write-ahead log per message sent,
-- at the price of coming back empty after a PostgreSQL crash or a fail-over (budgets then
-- start full; nodes write their connection counts again at their next heartbeat).

-- One row per budget key ("send:<user id>", "login:alice", ...): its GCRA "theoretical
-- arrival time", in microseconds since the epoch on the database's clock, so that the
-- nodes' clocks never matter. A key whose time has passed has its whole budget back and is
-- swept. `step` (one action's refill time) and `tolerance` (how far ahead of now the time
-- may run) are the quota of the latest action, in microseconds: a batch of actions names
-- each one's quota in the row it upserts. The fill factor leaves room on each page for the
-- update every action makes, so updates stay HOT (no indexed column changes).
CREATE UNLOGGED TABLE rate_limits (
    key       TEXT COLLATE "C" PRIMARY KEY,
    tat       BIGINT NOT NULL,
    step      BIGINT NOT NULL,
    tolerance BIGINT NOT NULL
) WITH (fillfactor = 50);

-- The nodes that are alive: each writes its heartbeat every few seconds. A node silent for
-- longer than the stale time (30 s by default) is dead: its connections stop counting and
-- it is swept, with them.
CREATE UNLOGGED TABLE chat_nodes (
    id           UUID PRIMARY KEY,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- How many WebSockets each user holds on each node.
CREATE UNLOGGED TABLE user_connections (
    user_id     UUID NOT NULL,
    node_id     UUID NOT NULL REFERENCES chat_nodes (id) ON DELETE CASCADE,
    connections INTEGER NOT NULL CHECK (connections >= 0),
    PRIMARY KEY (user_id, node_id)
);
CREATE INDEX user_connections_by_node ON user_connections (node_id);
