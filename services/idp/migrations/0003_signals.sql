-- Shared signals: the outbox of CAEP events for the transmitter (SSF `POST /events`).
--
-- A row is written in the same transaction as the change it reports (a session revoked, a
-- user's credentials revoked), so no committed revocation can go unreported; the signals worker
-- delivers it afterwards, retrying with backoff while the transmitter is unreachable. Rows are
-- claimed with `FOR UPDATE SKIP LOCKED`, so replicas never send one row at the same time.
-- No foreign keys: deleting a user must not take the report of their sessions' end with it.
CREATE TABLE signal_outbox (
    id bigserial PRIMARY KEY,
    -- The CAEP event name: `session-revoked`, `credential-change`.
    kind text NOT NULL,
    user_id text NOT NULL,
    email text,
    session_id text,
    -- CAEP's `initiating_entity`: admin, user, policy or system.
    initiating_entity text NOT NULL CHECK (initiating_entity IN ('admin', 'user', 'policy', 'system')),
    reason_admin text NOT NULL,
    -- The type's own members (`credential_type`, `change_type`).
    extra jsonb NOT NULL DEFAULT '{}',
    occurred_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    delivered_at timestamptz,
    -- The transmitter's `txn` for this event, once delivered.
    txn text
);
CREATE INDEX signal_outbox_due ON signal_outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- The anomaly rule counts a session's recent refused exchanges in the events table.
CREATE INDEX events_session_at ON events (session, at) WHERE session IS NOT NULL;
