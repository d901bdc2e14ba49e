-- The agent's own security events (the shape every service shares, see kit::events): the
-- login, the credential issued, the SQL run, the lease revoked, every refusal. Only the agent's
-- owning role writes here; ephemeral credentials get no privilege on this table.
CREATE TABLE IF NOT EXISTS banking.events (
    id uuid PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    outcome text,
    jti text,
    session text,
    body jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS events_jti ON banking.events (jti) WHERE jti IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_at ON banking.events (at);
