# The two commands that matter: `just up` (the demo) and `just test` (everything).
set shell := ["bash", "-euo", "pipefail", "-c"]

# Build and run the whole platform on this machine; Ctrl-C stops all of it.
up:
    scripts/check-prereqs.sh up
    cargo build --workspace --bins
    target/debug/stack

# Every test: unit, integration, end-to-end and interoperability, against a real Postgres.
test:
    scripts/check-prereqs.sh test
    cargo build --workspace --bins
    cargo test --workspace --no-fail-fast

# Formatting and lints, as CI would want them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Check an issuer audit log's hash chain (defaults to the demo's log).
audit-verify log=".data/verify-rar/audit.jsonl":
    cargo run -q -p verify-rar -- audit-verify {{log}}
