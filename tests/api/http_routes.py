"""What the route-walking tests share: the unauthenticated routes and the denial each kind of path answers."""

from __future__ import annotations

from typing import Any

#: kinko's denial body (with Vault's `errors` beside it, for Vault clients on the shared routes)
DENIED = {"error": {"code": "permission_denied", "message": "permission denied"}, "errors": ["permission denied"]}
#: Vault's own answer on the paths only Vault clients use (KV mounts, transit)
VAULT_DENIED = {"errors": ["permission denied"]}
PUBLIC = {("GET", "/v1/sys/health"), ("HEAD", "/v1/sys/health"), ("GET", "/v1/sys/seal-status"),
          ("GET", "/v1/sys/init"), ("POST", "/v1/sys/init"), ("PUT", "/v1/sys/init"), ("POST", "/v1/sys/unseal"),
          ("PUT", "/v1/sys/unseal"), ("GET", "/v1/sys/leader"),
          ("POST", "/v1/auth/kubernetes/login")}  # authenticates by service-account JWT instead of a token


#: Vault-only routes (KV mounts, transit, Vault's policy routes): their errors are Vault's shape alone
VAULT_ONLY = ("/v1/secret/", "/v1/transit/", "/v1/sys/policies/acl/", "/v1/sys/policy/")
VAULT_ONLY_EXACT = {"/v1/sys/policies/acl", "/v1/sys/policy"}
#: A Vault ACL policy body for the Vault policy write routes (sys/policies/acl/<name>, sys/policy/<name>)
VAULT_POLICY_BODY = {"policy": 'path "secret/data/*" { capabilities = ["read"] }'}
#: A value for each path parameter in the OpenAPI document's route templates.
TEMPLATE_VALUES = {"{path}": "app/db", "{prefix}": "app", "{name}": "other-only", "{rest}": "app/db",
                   "{kind}": "plaintext", "{hash_name}": "sha2-256", "{count}": "16", "{algorithm}": "sha2-256"}


def concrete(template: str) -> str:
    """A route template with every path parameter filled in."""
    for name, value in TEMPLATE_VALUES.items():
        template = template.replace(name, value)
    return template


def vault_only(url: str) -> bool:
    return url.startswith(VAULT_ONLY) or url in VAULT_ONLY_EXACT


def denial_for(url: str) -> dict[str, Any]:
    return VAULT_DENIED if vault_only(url) else DENIED
