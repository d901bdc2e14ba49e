-- The issuer's own store: security events, Vault tokens, leases, and role configuration.

-- Vault tokens minted at JWT login. Only a SHA-256 of the token is kept. The delegated JWT is
-- kept so that each creds request can re-check the session at the idp (RFC 7662).
CREATE TABLE verify_rar.tokens (
    accessor     text PRIMARY KEY,
    token_hash   text NOT NULL UNIQUE,
    jti          text NOT NULL,
    sid          text,
    sub          text NOT NULL,
    email        text,
    approval_id  text,
    actor_chain  text[] NOT NULL,
    login_role   text,
    jwt          text NOT NULL,
    rar          jsonb NOT NULL,
    paths        text[] NOT NULL,
    issued_at    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX tokens_expires ON verify_rar.tokens (expires_at);

-- One row per credential, written as an intent ('creating') before the role exists, so a crash
-- at any point leaves a row that names the role to clean up.
CREATE TABLE verify_rar.leases (
    lease_id        text PRIMARY KEY,
    role            text NOT NULL,
    pg_user         text NOT NULL UNIQUE,
    state           text NOT NULL CHECK (state IN ('creating', 'active', 'revoked', 'failed')),
    instance_id     text NOT NULL,
    token_accessor  text,
    jti             text,
    sid             text,
    owner           text,
    rar_type        text NOT NULL,
    rar_action      text NOT NULL,
    fingerprint     text NOT NULL,
    rar_summary     text NOT NULL,
    grant_id        uuid NOT NULL,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    max_expires_at  timestamptz NOT NULL,
    last_renewal    timestamptz,
    revoked_at      timestamptz,
    revoke_reason   text
);
CREATE INDEX leases_live ON verify_rar.leases (expires_at) WHERE state IN ('creating', 'active');
CREATE INDEX leases_sid ON verify_rar.leases (sid) WHERE state = 'active';

-- Roles: loaded from the roles directory at start-up (source 'file') or written over the admin
-- API (source 'api'); shared by every replica.
CREATE TABLE verify_rar.roles (
    name        text PRIMARY KEY,
    config      jsonb NOT NULL,
    source      text NOT NULL CHECK (source IN ('file', 'api')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
