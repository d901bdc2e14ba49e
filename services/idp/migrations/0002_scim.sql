-- SCIM 2.0 (RFC 7643): what a User resource needs beyond sign-in (structured name, last
-- modification), and Groups with their members. The role `admin` is membership of the group
-- `admins`, so there is one place that says who is an administrator.

ALTER TABLE users
    ADD COLUMN given_name text,
    ADD COLUMN family_name text,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
UPDATE users SET updated_at = created_at;

CREATE TABLE groups (
    id text PRIMARY KEY,
    -- A group is named the way a grant names it (`add_user_to_group`'s `group`): lower-case
    -- letters, digits, `_` and `-`, so a name in a token and a name here compare exactly.
    display_name text NOT NULL UNIQUE CHECK (display_name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
    group_id text NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

INSERT INTO groups (id, display_name) VALUES
    ('grp_traders', 'traders'),
    ('grp_admins', 'admins');
