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
    scripts/check-deploy.sh
    cargo build --workspace --bins
    cargo test --workspace --no-fail-fast

# The performance budget of DESIGN.md, each row against a baseline from the same run: release
# build, the whole platform as processes, its own durable Postgres, loopback HTTP. Prints the
# table and writes target/bench/report.md (BENCH_SCALE=0.2 for a quick look). BENCH_MICRO=1
# adds the criterion micro-benchmarks of the exchange's crypto and RAR work (a separate build,
# ~2 min; the table's crypto baseline is measured in the run itself). Not part of `just test`.
bench:
    scripts/check-prereqs.sh up
    # The services `stack::launch` starts, and the driver; nothing else (no launcher binary).
    cargo build --release --bins -p ssf -p idp -p verify-rar -p graph -p banking -p iam -p entra -p concierge -p web -p bench
    target/release/bench
    if [ "${BENCH_MICRO:-0}" = 1 ]; then cargo bench -p kit --bench tokens -- --warm-up-time 1 --measurement-time 2 --noplot; fi

# Formatting and lints, as CI would want them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Check an issuer audit log's hash chain (defaults to the demo's log).
audit-verify log=".data/verify-rar/audit.jsonl":
    cargo run -q -p verify-rar -- audit-verify {{log}}

# Validate docker-compose.yml, the Dockerfile and infra/k8s offline (part of `just test`).
check-deploy:
    scripts/check-deploy.sh
