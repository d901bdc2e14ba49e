-- Demo tenant: sarah.smith@example.com already banks here (a checking account), but has no
-- workforce identity yet. Scenario S3 onboards her into Verify and Entra, opens her a trading
-- account and funds it from this checking account.
INSERT INTO banking.accounts (owner, name, kind, balance_cents) VALUES
    ('sarah.smith@example.com', 'checking', 'checking', 200000)
ON CONFLICT (owner, name) DO NOTHING;
