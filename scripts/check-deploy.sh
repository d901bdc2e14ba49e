#!/usr/bin/env bash
# Keeps the deployment files true without a container engine or a cluster (`just test` runs it):
#   - docker-compose.yml against the Compose Specification's JSON schema (check-jsonschema's
#     vendored copy);
#   - infra/k8s rendered by `kubectl kustomize` and every object validated, strictly, against the
#     Kubernetes OpenAPI schemas (kubernetes-validate, offline);
#   - scripts/check_deploy.py: the files agree with the launcher (every service `just up` starts,
#     with every variable it gives it), the Dockerfile builds what `just up` builds, probes,
#     requests, replicas and budgets are there, and infra/k8s/config/ equals infra/ (and its
#     narration/ equals web/narration/, the web UI's scenarios).
# Usage: scripts/check-deploy.sh [--sync]   (--sync: refresh infra/k8s/config/ from infra/ and
#        web/narration/ first)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/target/deploy-venv"
packages=(
  "check-jsonschema==0.33.0"
  "kubernetes-validate==1.37.0"
  "PyYAML==6.0.3"
)
k8s_version="1.32.0"

stamp="$venv/.packages"
wanted="$(printf '%s\n' "${packages[@]}")"
if ! [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  mkdir -p "$root/target"
  exec 9>"$root/target/deploy-venv.lock"
  flock 9
  if ! [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
    printf '%s\n' "$wanted" > "$stamp"
  fi
  exec 9>&-
fi

if [[ "${1:-}" == --sync ]]; then
  "$venv/bin/python" scripts/check_deploy.py --sync
fi

command -v kubectl >/dev/null || {
  echo "kubectl is missing: it renders infra/k8s (kubectl kustomize); see docs/DEPLOY.md" >&2
  exit 1
}

echo "docker-compose.yml: Compose Specification schema"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

rendered="$root/target/k8s-rendered.yaml"
echo "infra/k8s: kubectl kustomize, then Kubernetes $k8s_version schemas (strict)"
kubectl kustomize infra/k8s > "$rendered"
"$venv/bin/kubernetes-validate" --kubernetes-version "$k8s_version" --strict --quiet "$rendered"

echo "deployment files against the launcher, the Dockerfile and infra/"
"$venv/bin/python" scripts/check_deploy.py "$rendered"
echo "deployment files: ok"
