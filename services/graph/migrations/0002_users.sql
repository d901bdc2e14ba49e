-- Graph's users: the directory of this stand-in tenant. (Migration 1 is the shared `events`
-- table, from kit::events::EVENTS_TABLE_SQL.)
--
-- A UPN is unique regardless of case, as in Entra; `upn_key` is that case-folded form, and the
-- list's stable sort key (its cursor). No password is stored: this tenant has no sign-in.

CREATE TABLE users (
    id uuid PRIMARY KEY,
    user_principal_name text NOT NULL,
    upn_key text GENERATED ALWAYS AS (lower(user_principal_name)) STORED UNIQUE,
    display_name text NOT NULL,
    mail_nickname text NOT NULL,
    mail text,
    account_enabled boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The delegated token that created the user: joins the row to its security event.
    created_by_jti text NOT NULL
);
