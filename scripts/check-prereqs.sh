#!/usr/bin/env bash
# Checks what `just up` and `just test` need on this machine and says how to get what is missing.
# Usage: scripts/check-prereqs.sh [up|test]
set -uo pipefail
what="${1:-up}"
missing=0

say() { printf '  - %s\n' "$*" >&2; missing=1; }

command -v cargo >/dev/null || say "Rust (cargo) is missing: install it from https://rustup.rs (Rust 1.95 or newer)."

if [[ -z "${DATABASE_URL:-}" ]]; then
  found=""
  if [[ -n "${PG_BIN:-}" && -x "$PG_BIN/initdb" ]]; then found=1; fi
  for d in /usr/lib/postgresql/*/bin; do [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && found=1; done
  command -v initdb >/dev/null && command -v pg_ctl >/dev/null && found=1
  if [[ -z "$found" ]]; then
    say "Postgres server binaries (initdb, pg_ctl) are missing: on Debian/Ubuntu run 'sudo apt-get install postgresql' (or set PG_BIN, or set DATABASE_URL to an existing server)."
  fi
  if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || say "Running as root: Postgres must run as the 'postgres' OS user, which does not exist ('apt-get install postgresql' creates it)."
    command -v runuser >/dev/null || say "Running as root needs 'runuser' (package util-linux)."
  fi
fi

if [[ "$what" == test ]]; then
  command -v python3 >/dev/null || say "python3 is missing: the interoperability tests run real Python clients (apt-get install python3 python3-venv)."
  python3 -c 'import venv, ensurepip' 2>/dev/null || say "Python's venv module is missing: apt-get install python3-venv."
  browser=""
  command -v chromium >/dev/null || browser="chromium"
  command -v chromedriver >/dev/null || browser="${browser:+$browser and }chromedriver"
  [[ -z "$browser" ]] || say "Not found on PATH: $browser. The web UI's browser test drives headless Chromium through chromedriver: on Debian/Ubuntu run 'sudo apt-get install chromium chromium-driver'."
fi

if [[ "$missing" == 1 ]]; then
  echo "Missing prerequisites (see README.md, 'Prerequisites'):" >&2
  exit 1
fi
