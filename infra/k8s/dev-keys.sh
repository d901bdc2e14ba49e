#!/usr/bin/env bash
# Makes the platform's signing keys in the exact format the services load (what `just up` writes
# into .data/keys): for each agent an ES256 key `<name>.key` (PKCS#8 PEM) and its public JWK
# `<name>.jwk.json` (`kid` = RFC 7638 thumbprint) for the idp's registry; the idp's ES256
# `idp.key`; the transmitter's RS256 `ssf-set.key` (2048-bit). Needs only openssl and coreutils.
#
#   infra/k8s/dev-keys.sh dir DIR        write the files into DIR (existing files are kept)
#   infra/k8s/dev-keys.sh secrets [NS]   print the Kubernetes Secrets (namespace NS, default
#                                        `authority`) that replace infra/k8s/base/secrets.yaml
#
# Every replica of a service must load the same key (one issuer, one JWKS), so keys are made
# once, outside the pods, and mounted from Secrets; never bake them into an image or commit them.
set -euo pipefail

AGENTS=(concierge banking iam entra)

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# ec_key DIR NAME: DIR/NAME.key (+ DIR/NAME.jwk.json when NAME is an agent).
ec_key() {
  local dir="$1" name="$2" key="$1/$2.key"
  if [[ ! -f "$key" ]]; then
    (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key" 2>/dev/null)
  fi
  [[ "$name" == idp ]] && return 0
  # The uncompressed public point is the last 65 bytes of the SubjectPublicKeyInfo: 04 || x || y.
  local point x y kid
  point="$(openssl pkey -in "$key" -pubout -outform DER 2>/dev/null | tail -c 65 | od -An -v -tx1 | tr -d ' \n')"
  x="$(printf '%s' "${point:2:64}" | xxd_r | b64url)"
  y="$(printf '%s' "${point:66:64}" | xxd_r | b64url)"
  kid="$(printf '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' "$x" "$y" | openssl dgst -sha256 -binary | b64url)"
  printf '{\n  "use": "sig",\n  "alg": "ES256",\n  "kid": "%s",\n  "kty": "EC",\n  "crv": "P-256",\n  "x": "%s",\n  "y": "%s"\n}' \
    "$kid" "$x" "$y" > "$dir/$name.jwk.json"
}

# Hex to bytes without xxd (not in every slim image).
xxd_r() { local hex; hex="$(cat)"; printf '%b' "$(printf '%s' "$hex" | sed 's/../\\x&/g')"; }

rsa_key() {
  local key="$1/$2.key"
  if [[ ! -f "$key" ]]; then
    (umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key" 2>/dev/null)
  fi
}

make_dir() {
  local dir="$1"
  mkdir -p "$dir"
  for a in "${AGENTS[@]}"; do ec_key "$dir" "$a"; done
  ec_key "$dir" idp
  rsa_key "$dir" ssf-set
}

# secret NAME NS FILE...: a Secret holding FILEs under their base names.
secret() {
  local name="$1" ns="$2"; shift 2
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n  labels:\n    app.kubernetes.io/part-of: authority\ntype: Opaque\ndata:\n' "$name" "$ns"
  for f in "$@"; do printf '  %s: %s\n' "$(basename "$f")" "$(base64 -w0 < "$f")"; done
}

case "${1:-}" in
  dir)
    make_dir "${2:?usage: dev-keys.sh dir DIR}"
    ;;
  secrets)
    ns="${2:-authority}"
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
    make_dir "$tmp"
    # The idp: its own key and every agent's public key (the registry's seed).
    jwks=(); for a in "${AGENTS[@]}"; do jwks+=("$tmp/$a.jwk.json"); done
    secret idp-keys "$ns" "$tmp/idp.key" "${jwks[@]}"
    secret ssf-keys "$ns" "$tmp/ssf-set.key"
    for a in "${AGENTS[@]}"; do secret "$a-key" "$ns" "$tmp/$a.key"; done
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
