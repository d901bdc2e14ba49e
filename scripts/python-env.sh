#!/usr/bin/env bash
# Creates (once) the Python venv the interop tests use, at target/interop-venv, with the pinned
# client packages below. Idempotent: a venv that already has them is left as it is.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/target/interop-venv"
packages=(
  "hvac==2.4.0"
  "a2a-sdk==1.3.0"
  "httpx==0.28.1"
)

stamp="$venv/.packages"
wanted="$(printf '%s\n' "${packages[@]}")"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi

# Two test binaries may get here at once: one creates, the other waits.
mkdir -p "$root/target"
exec 9>"$root/target/interop-venv.lock"
flock 9
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
printf '%s\n' "$wanted" > "$stamp"
