-- The identity provider's own schema: users, sessions, codes, refresh tokens, the agent
-- registry, single-use actor token ids, revoked tokens, push approvals and security events.
-- Everything replicas must agree on lives here, not in memory.

CREATE TABLE users (
    id text PRIMARY KEY,
    email text NOT NULL UNIQUE,
    display_name text NOT NULL,
    password_hash text,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id),
    client_id text NOT NULL,
    acr text NOT NULL,
    auth_time timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE auth_codes (
    code_hash text PRIMARY KEY,
    client_id text NOT NULL,
    user_id text NOT NULL REFERENCES users (id),
    session_id text NOT NULL REFERENCES sessions (id),
    redirect_uri text NOT NULL,
    code_challenge text NOT NULL,
    scope text NOT NULL,
    nonce text,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);

CREATE TABLE refresh_tokens (
    token_hash text PRIMARY KEY,
    session_id text NOT NULL REFERENCES sessions (id),
    client_id text NOT NULL,
    user_id text NOT NULL REFERENCES users (id),
    scope text NOT NULL,
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz
);

CREATE TABLE agents (
    name text PRIMARY KEY,
    spiffe_id text NOT NULL UNIQUE,
    public_jwk jsonb NOT NULL,
    audiences jsonb NOT NULL,
    ceiling jsonb NOT NULL,
    acts_for jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'suspended')),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Actor token and client assertion ids, each accepted once until it would have expired anyway.
CREATE TABLE used_jtis (
    jti text PRIMARY KEY,
    issuer text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- RFC 7009 revocations of access tokens, kept until the token would have expired.
CREATE TABLE revoked_tokens (
    jti text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE TABLE approvals (
    id text PRIMARY KEY,
    auth_req_hash text NOT NULL UNIQUE,
    user_id text NOT NULL REFERENCES users (id),
    session_id text NOT NULL REFERENCES sessions (id),
    client_id text NOT NULL,
    requested_by text NOT NULL,
    chain jsonb NOT NULL,
    audience text NOT NULL,
    authorization_details jsonb NOT NULL,
    fingerprint text NOT NULL,
    summary text NOT NULL,
    binding_code text NOT NULL,
    tier int NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
    pending_token jsonb NOT NULL,
    poll_interval int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    decided_at timestamptz,
    last_polled_at timestamptz,
    issued_jti text
);
CREATE INDEX approvals_user_pending ON approvals (user_id) WHERE status = 'pending';

-- Tier-2 approvals a session holds: one approval covers the session's writes for 30 minutes.
CREATE TABLE session_write_grants (
    session_id text PRIMARY KEY REFERENCES sessions (id),
    approval_id text NOT NULL REFERENCES approvals (id),
    valid_until timestamptz NOT NULL
);

CREATE TABLE events (
    id uuid PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    outcome text,
    jti text,
    session text,
    body jsonb NOT NULL
);
CREATE INDEX events_jti ON events (jti) WHERE jti IS NOT NULL;
CREATE INDEX events_at ON events (at);
