"""A gateway config with API keys for two tenants and JWT settings, for auth tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from citadel.server.auth.api_keys import new_key

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
AUDIENCE = "citadel-tests"
ISSUER = "tests"


@dataclass
class Credentials:
    keys: dict[str, str]  # name -> API key
    config_path: Path

    def bearer(self, name: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[name]}"),)


def token(role: str, tenant: str = "", expires_in: float = 300, **claims) -> str:
    now = time.time()
    body = {
        "sub": f"user-{role}",
        "role": role,
        "exp": now + expires_in,
        "aud": AUDIENCE,
        "iss": ISSUER,
        **claims,
    }
    if tenant:
        body["tenant"] = tenant
    return jwt.encode(body, JWT_SECRET, algorithm="HS256")


def write_config(path: Path, extra: str = "") -> Credentials:
    """Keys: reader/writer/admin of tenant `acme`, admin of tenant `globex`, and a tenant-less admin."""
    keys, entries = {}, []
    for name, role, tenant in [
        ("reader", "reader", "acme"),
        ("writer", "writer", "acme"),
        ("admin", "admin", "acme"),
        ("other-tenant", "admin", "globex"),
        ("root", "admin", ""),
    ]:
        key, hashed = new_key(name)
        keys[name] = key
        entries.append(
            f'[[auth.api_keys]]\nid = "{name}"\nhash = "{hashed}"\nrole = "{role}"\n'
            + (f'tenant = "{tenant}"\n' if tenant else "")
        )
    path.write_text(
        "[auth]\n"
        f'jwt_hs256_secret = "{JWT_SECRET}"\njwt_audience = "{AUDIENCE}"\njwt_issuer = "{ISSUER}"\n\n'
        + "\n".join(entries)
        + "\n"
        + extra
    )
    return Credentials(keys, path)
