-- Webhooks (issue #17). The outbox: one row per change to announce, written in the change's
-- own transaction (an append batch writes its messages' rows with one INSERT ... SELECT), and
-- taken by the dispatcher's fan-out, which queues its deliveries in the same transaction as
-- it removes it. References only (kind, ids, seq): payloads are built when they are sent.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL,
    conversation_id UUID,
    message_id      UUID,
    -- The sender, the member added or removed, the renamer: who the event is about.
    user_id         UUID,
    report_id       UUID,
    seq             BIGINT,
    created_at      TIMESTAMPTZ NOT NULL
);
-- The endpoints admins register. The secret is kept as given: it is needed to sign.
CREATE TABLE webhooks (
    id         UUID PRIMARY KEY NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_by UUID,
    created_at TIMESTAMPTZ NOT NULL
);
-- One event on its way to one endpoint. Pending while `next_attempt_at` is set: due then,
-- and while a dispatcher holds it (`lease_holder`), that is when its lease runs out, so one
-- column says both "not before" and "not while someone else has it". A dead letter (given up
-- on) has no `next_attempt_at`. Removed once delivered. Deliveries of one endpoint and
-- conversation go out one at a time, in id order.
CREATE TABLE webhook_deliveries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         UUID NOT NULL,
    kind             TEXT NOT NULL,
    conversation_id  UUID,
    message_id       UUID,
    user_id          UUID,
    report_id        UUID,
    seq              BIGINT,
    count            INTEGER NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at TIMESTAMPTZ,
    next_attempt_at  TIMESTAMPTZ,
    lease_holder     TEXT,
    last_error       TEXT
);
-- The claim: pending deliveries in id order; and what precedes a delivery in its order.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at, id)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, conversation_id, id)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (webhook_id, id)
    WHERE next_attempt_at IS NULL;
