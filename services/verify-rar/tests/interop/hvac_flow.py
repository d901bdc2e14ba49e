"""hvac 2.4.0 against verify-rar: login, creds, lookup, renew, revoke. Prints one JSON line."""
import json
import os
import sys

import hvac
from hvac import exceptions

client = hvac.Client(url=os.environ["VAULT_ADDR"])
health = client.sys.read_health_status()  # HEAD by default
assert health.status_code == 200, health.status_code

client.auth.jwt.jwt_login(role="banking", jwt=os.environ["JWT"])
authenticated = client.is_authenticated()

creds = client.secrets.database.generate_credentials("banking-transfers", mount_point="verify-rar")
lease_id = creds["lease_id"]
assert creds["data"]["username"].startswith("v-banking-transfers-"), creds

lookup = client.sys.read_lease(lease_id)
assert lookup["data"]["id"] == lease_id, lookup
assert lookup["data"]["ttl"] > 0, lookup

renewed = client.sys.renew_lease(lease_id)
assert renewed["lease_id"] == lease_id, renewed

revoked = client.sys.revoke_lease(lease_id)

try:
    client.sys.read_lease(lease_id)
    after = "found"
except exceptions.InvalidRequest:
    after = "InvalidRequest"

print(json.dumps({
    "authenticated": authenticated,
    "username": creds["data"]["username"],
    "revoke_status": revoked.status_code,
    "lookup_after_revoke": after,
}))
sys.exit(0)
