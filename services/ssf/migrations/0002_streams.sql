-- Streams (SSF §8.1.1), their subjects (§8.1.3) and every SET not yet settled. A SET row is
-- written, signed, in the same transaction that decides to send it; delivery only changes its
-- state, so a restart (or a replica) picks up exactly what is still pending.

CREATE TABLE streams (
    stream_id text PRIMARY KEY,
    -- The receiver (its configured name) that owns the stream; only it may see or change it.
    receiver text NOT NULL,
    aud text[] NOT NULL,
    events_requested text[] NOT NULL DEFAULT '{}',
    events_delivered text[] NOT NULL DEFAULT '{}',
    delivery_method text NOT NULL,
    -- Push: the receiver's URL. Poll: NULL (the URL is ours, derived from the stream id).
    endpoint_url text,
    -- Push: the Authorization value the receiver asked us to send. Kept as given: we must
    -- present it, so it cannot be hashed.
    authorization_header text,
    description text,
    status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'paused', 'disabled')),
    status_reason text,
    last_verification_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX streams_receiver ON streams (receiver);

CREATE TABLE stream_subjects (
    stream_id text NOT NULL REFERENCES streams ON DELETE CASCADE,
    -- SHA-256 of the subject's canonical JSON: one row per subject.
    subject_key text NOT NULL,
    subject jsonb NOT NULL,
    mode text NOT NULL CHECK (mode IN ('added', 'removed')),
    verified boolean,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, subject_key)
);

CREATE TABLE sets (
    -- Delivery order within a stream.
    seq bigserial PRIMARY KEY,
    jti text NOT NULL UNIQUE,
    stream_id text NOT NULL REFERENCES streams ON DELETE CASCADE,
    event_type text NOT NULL,
    txn text,
    token text NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts int NOT NULL DEFAULT 0,
    -- Push: not before this time (retry backoff, or the lease of the replica delivering it).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX sets_pending ON sets (stream_id, seq) WHERE state = 'pending';
CREATE INDEX sets_due ON sets (next_attempt_at) WHERE state = 'pending';
CREATE INDEX sets_finished ON sets (finished_at) WHERE state <> 'pending';
