"""API keys: `ck_<id>_<secret>`, configured only as salted hashes and compared in constant time.

The id part finds the configured entry without comparing against every hash; the secret is
32 random bytes, so a salted SHA-256 (not a slow password hash) is the right cost per call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from citadel.server.auth.principal import Principal, parse_role, parse_tenant

PREFIX = "ck"
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class ApiKeyEntry:
    id: str
    salt: bytes
    digest: bytes
    role: int
    tenant: str


def hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def new_key(key_id: str) -> tuple[str, str]:
    """A fresh key and the hash to configure for it: (key, "sha256:<salt>:<digest>")."""
    if not _ID.fullmatch(key_id):
        raise ValueError(f"key id {key_id!r}: use 1 to 32 lower-case letters, digits or '-'")
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    return f"{PREFIX}_{key_id}_{secret}", f"sha256:{salt.hex()}:{hash_secret(secret, salt).hex()}"


def parse_entries(raw: list) -> dict[str, ApiKeyEntry]:
    """Config `auth.api_keys` → entries by id; errors name the offending entry."""
    entries: dict[str, ApiKeyEntry] = {}
    for i, item in enumerate(raw):
        where = f"auth.api_keys[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a table with id, hash, role")
        unknown = set(item) - {"id", "hash", "role", "tenant"}
        if unknown:
            raise ValueError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
        key_id = str(item.get("id", ""))
        if not _ID.fullmatch(key_id):
            raise ValueError(f"{where}.id: {key_id!r} is not a key id (1-32 of a-z, 0-9, '-')")
        if key_id in entries:
            raise ValueError(f"{where}.id: {key_id!r} is configured twice")
        parts = str(item.get("hash", "")).split(":")
        try:
            if len(parts) != 3 or parts[0] != "sha256":
                raise ValueError
            salt, digest = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
            if len(digest) != 32:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{where}.hash: expected 'sha256:<salt hex>:<digest hex>' as printed by `citadel keys create`"
            ) from None
        tenant = parse_tenant(f"{where}.tenant", item.get("tenant", ""))
        entries[key_id] = ApiKeyEntry(
            key_id, salt, digest, parse_role(f"{where}.role", item.get("role")), tenant
        )
    return entries


class ApiKeyVerifier:
    def __init__(self, entries: dict[str, ApiKeyEntry]) -> None:
        self._entries = entries

    @staticmethod
    def looks_like_key(token: str) -> bool:
        return token.startswith(PREFIX + "_")

    def verify(self, key: str) -> Principal | None:
        """The key's principal, or None when it is not a valid configured key."""
        parts = key.split("_", 2)
        if len(parts) != 3:
            return None
        entry = self._entries.get(parts[1])
        # Compare even when the id is unknown, so timing does not tell which ids exist.
        salt, digest = (entry.salt, entry.digest) if entry else (b"\0" * 16, b"\0" * 32)
        ok = hmac.compare_digest(hash_secret(parts[2], salt), digest)
        if not (ok and entry):
            return None
        return Principal(subject=f"key:{entry.id}", role=entry.role, tenant=entry.tenant)
