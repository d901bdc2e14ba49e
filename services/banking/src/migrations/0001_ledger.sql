-- The ledger: accounts, transactions, and the grants that bind each ephemeral credential to the
-- one operation it was issued for. See `src/binding.rs` for the design in prose.

CREATE TABLE banking.accounts (
    id            bigserial PRIMARY KEY,
    owner         text NOT NULL CHECK (owner = lower(owner) AND owner LIKE '%_@_%'),
    name          text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    kind          text NOT NULL CHECK (kind IN ('checking', 'savings', 'trading')),
    balance_cents bigint NOT NULL DEFAULT 0 CHECK (balance_cents >= 0),
    currency      char(3) NOT NULL DEFAULT 'USD',
    opened_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, name)
);

-- One row per credential the issuer mints, written by the issuer in the same transaction that
-- creates the role. The ephemeral role cannot read or write this table; only the security
-- definer functions below (owned by the ledger's owner) consult and update it.
CREATE TABLE banking.grants (
    id              uuid PRIMARY KEY,
    pg_user         text NOT NULL UNIQUE,
    jti             text NOT NULL,
    rar_fingerprint text NOT NULL,
    action          text NOT NULL CHECK (action IN ('transfer_funds', 'open_account', 'get_balance', 'list_accounts')),
    owner           text NOT NULL,
    source          text,
    destination     text,
    amount_cents    bigint,
    currency        char(3),
    kind            text,
    account         text,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Progress of the one operation; a failed attempt rolls these back with everything else.
    debited         boolean NOT NULL DEFAULT false,
    credited        boolean NOT NULL DEFAULT false,
    used_at         timestamptz,
    CHECK (action <> 'transfer_funds' OR (source IS NOT NULL AND destination IS NOT NULL
        AND source <> destination AND amount_cents > 0 AND currency IS NOT NULL)),
    CHECK (action <> 'open_account' OR kind IN ('checking', 'savings', 'trading'))
);

CREATE TABLE banking.transactions (
    id                    bigserial PRIMARY KEY,
    at                    timestamptz NOT NULL DEFAULT now(),
    owner                 text NOT NULL,
    source                text NOT NULL,
    destination           text NOT NULL,
    amount_cents          bigint NOT NULL CHECK (amount_cents > 0),
    currency              char(3) NOT NULL DEFAULT 'USD',
    audit_pg_user         text NOT NULL,
    audit_jti             text NOT NULL,
    -- At most one transaction per grant, whatever else happens.
    audit_grant_id        uuid NOT NULL UNIQUE,
    audit_rar_fingerprint text NOT NULL
);
CREATE INDEX transactions_jti ON banking.transactions (audit_jti);

-- Group roles are cluster-wide, so several databases (tests, or another copy of the platform)
-- may create them at once: an existing role is fine.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['banking_transfers', 'banking_accounts', 'banking_reader'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END LOOP;
END $$;

-- The ledger's administrators: superusers and the owner of the schema (the migrating role).
-- They bypass the per-grant rules, as they could bypass anything anyway.
CREATE FUNCTION banking.is_ledger_admin() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND rolsuper)
        OR session_user = (SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
                           WHERE n.nspname = 'banking')
$$;

-- Row-level security: a credential sees only its grant's owner's rows (and, for a balance
-- grant naming an account, only that account).
CREATE FUNCTION banking.visible(p_owner text, p_name text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, banking AS $$
    SELECT banking.is_ledger_admin() OR EXISTS (
        SELECT 1 FROM banking.grants g
        WHERE g.pg_user = session_user AND g.expires_at > now() AND g.owner = p_owner
          AND (g.account IS NULL OR p_name IS NULL OR g.account = p_name))
$$;

ALTER TABLE banking.accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE banking.transactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY accounts_of_the_grant ON banking.accounts
    USING (banking.visible(owner, name)) WITH CHECK (banking.visible(owner, name));
CREATE POLICY transactions_of_the_grant ON banking.transactions
    USING (banking.visible(owner, NULL)) WITH CHECK (banking.visible(owner, NULL));

-- Debit and credit: each balance change must be exactly the granted amount, on the granted
-- account of the granted owner, once each.
CREATE FUNCTION banking.enforce_balance_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, banking AS $$
DECLARE
    g banking.grants;
    delta bigint;
BEGIN
    IF banking.is_ledger_admin() THEN
        RETURN NEW;
    END IF;
    IF (NEW.id, NEW.owner, NEW.name, NEW.kind, NEW.currency, NEW.opened_at)
        IS DISTINCT FROM (OLD.id, OLD.owner, OLD.name, OLD.kind, OLD.currency, OLD.opened_at) THEN
        RAISE EXCEPTION 'only a balance may change' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO g FROM banking.grants WHERE pg_user = session_user FOR UPDATE;
    IF NOT FOUND OR g.action <> 'transfer_funds' THEN
        RAISE EXCEPTION 'this credential holds no transfer grant' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF g.expires_at <= now() THEN
        RAISE EXCEPTION 'the transfer grant has expired' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF g.used_at IS NOT NULL THEN
        RAISE EXCEPTION 'the transfer grant was already used' USING ERRCODE = 'insufficient_privilege';
    END IF;
    delta := NEW.balance_cents - OLD.balance_cents;
    IF OLD.owner = g.owner AND OLD.currency = g.currency AND OLD.name = g.source
        AND delta = -g.amount_cents AND NOT g.debited THEN
        UPDATE banking.grants SET debited = true WHERE id = g.id;
    ELSIF OLD.owner = g.owner AND OLD.currency = g.currency AND OLD.name = g.destination
        AND delta = g.amount_cents AND NOT g.credited THEN
        UPDATE banking.grants SET credited = true WHERE id = g.id;
    ELSE
        RAISE EXCEPTION 'this credential may only move % % from % to % of %, once',
            g.amount_cents, g.currency, g.source, g.destination, g.owner
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_balance_change BEFORE UPDATE ON banking.accounts
    FOR EACH ROW EXECUTE FUNCTION banking.enforce_balance_change();

-- The audit row: only after both legs, only for the granted transfer, stamped from the grant
-- (the client cannot choose its own audit columns), and it consumes the grant.
CREATE FUNCTION banking.stamp_transaction() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, banking AS $$
DECLARE
    g banking.grants;
BEGIN
    IF banking.is_ledger_admin() THEN
        RETURN NEW;
    END IF;
    SELECT * INTO g FROM banking.grants WHERE pg_user = session_user FOR UPDATE;
    IF NOT FOUND OR g.action <> 'transfer_funds' OR g.expires_at <= now() OR g.used_at IS NOT NULL THEN
        RAISE EXCEPTION 'this credential holds no unused transfer grant' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT (g.debited AND g.credited) THEN
        RAISE EXCEPTION 'the audit row comes after the debit and the credit' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.owner, NEW.source, NEW.destination, NEW.amount_cents)
        IS DISTINCT FROM (g.owner, g.source, g.destination, g.amount_cents) THEN
        RAISE EXCEPTION 'the audit row must record the granted transfer' USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.at := now();
    NEW.currency := g.currency;
    NEW.audit_pg_user := session_user;
    NEW.audit_jti := g.jti;
    NEW.audit_grant_id := g.id;
    NEW.audit_rar_fingerprint := g.rar_fingerprint;
    UPDATE banking.grants SET used_at = now() WHERE id = g.id;
    RETURN NEW;
END $$;
CREATE TRIGGER transactions_stamp BEFORE INSERT ON banking.transactions
    FOR EACH ROW EXECUTE FUNCTION banking.stamp_transaction();

-- All three statements or nothing: at commit, a transfer grant is either untouched or complete.
-- Deferred, so it runs once the client says COMMIT (or at the end of an autocommit statement);
-- SET CONSTRAINTS can only make it run earlier, never skip it.
CREATE FUNCTION banking.check_transfer_complete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, banking AS $$
DECLARE
    g banking.grants;
BEGIN
    SELECT * INTO g FROM banking.grants WHERE pg_user = session_user;
    IF FOUND AND g.action = 'transfer_funds'
        AND NOT (g.debited = g.credited AND g.credited = (g.used_at IS NOT NULL)) THEN
        RAISE EXCEPTION 'a transfer is a debit, a credit and its audit row in one transaction'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER accounts_transfer_complete AFTER UPDATE ON banking.accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION banking.check_transfer_complete();
CREATE CONSTRAINT TRIGGER transactions_transfer_complete AFTER INSERT ON banking.transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION banking.check_transfer_complete();

-- Opening an account is a function, not an INSERT privilege: the owner, kind and name come from
-- the grant and the ledger, never from the caller.
CREATE FUNCTION banking.open_account(p_kind text) RETURNS banking.accounts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, banking AS $$
DECLARE
    g banking.grants;
    n int := 1;
    account_name text := p_kind;
    created banking.accounts;
BEGIN
    SELECT * INTO g FROM banking.grants WHERE pg_user = session_user FOR UPDATE;
    IF NOT FOUND OR g.action <> 'open_account' OR g.expires_at <= now() OR g.used_at IS NOT NULL THEN
        RAISE EXCEPTION 'this credential holds no unused open_account grant' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_kind IS DISTINCT FROM g.kind THEN
        RAISE EXCEPTION 'this credential may only open a % account', g.kind USING ERRCODE = 'insufficient_privilege';
    END IF;
    WHILE EXISTS (SELECT 1 FROM banking.accounts WHERE owner = g.owner AND name = account_name) LOOP
        n := n + 1;
        account_name := p_kind || '-' || n;
    END LOOP;
    INSERT INTO banking.accounts (owner, name, kind) VALUES (g.owner, account_name, g.kind) RETURNING * INTO created;
    UPDATE banking.grants SET used_at = now() WHERE id = g.id;
    RETURN created;
END $$;

-- What each group may do, and nothing more. The per-grant rules above narrow it further.
REVOKE ALL ON ALL TABLES IN SCHEMA banking FROM PUBLIC;
REVOKE ALL ON FUNCTION banking.open_account(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA banking TO banking_transfers, banking_accounts, banking_reader;
GRANT SELECT (id, owner, name, kind, balance_cents, currency), UPDATE (balance_cents) ON banking.accounts TO banking_transfers;
GRANT INSERT (owner, source, destination, amount_cents) ON banking.transactions TO banking_transfers;
GRANT SELECT ON banking.transactions TO banking_transfers;
GRANT USAGE ON SEQUENCE banking.transactions_id_seq TO banking_transfers;
GRANT EXECUTE ON FUNCTION banking.open_account(text) TO banking_accounts;
GRANT SELECT ON banking.accounts TO banking_accounts, banking_reader;
GRANT SELECT ON banking.transactions TO banking_reader;
