-- Demo tenant: alice and bob each hold a checking and a savings account.
INSERT INTO banking.accounts (owner, name, kind, balance_cents) VALUES
    ('alice@example.com', 'checking', 'checking', 500000),
    ('alice@example.com', 'savings',  'savings', 1000000),
    ('bob@example.com',   'checking', 'checking', 500000),
    ('bob@example.com',   'savings',  'savings', 1000000)
ON CONFLICT (owner, name) DO NOTHING;
