"""Who is calling: an authenticated subject with a role and, optionally, a tenant."""

from __future__ import annotations

import re
from dataclasses import dataclass

from citadel.options.v1 import options_pb2

ROLE_NAMES = {
    options_pb2.ROLE_READER: "reader",
    options_pb2.ROLE_WRITER: "writer",
    options_pb2.ROLE_ADMIN: "admin",
}
ROLES_BY_NAME = {v: k for k, v in ROLE_NAMES.items()}


@dataclass(frozen=True)
class Principal:
    subject: str  # "key:<id>", "jwt:<sub>" or "anonymous"
    role: int  # options_pb2.Role; the enum's order is the privilege order
    tenant: str = ""  # empty: the shared namespace

    @property
    def role_name(self) -> str:
        return ROLE_NAMES[self.role]

    def may(self, required: int) -> bool:
        return self.role >= required


# Used when authentication is switched off explicitly (development).
ANONYMOUS = Principal(subject="anonymous", role=options_pb2.ROLE_ADMIN)


# A tenant id is a name part of physical collection names (server/tenancy.py) and of Redis keys,
# so it holds no separator of either: lower-case letters, digits, '_' and '-' only.
TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
TENANT_RULE = "1 to 63 lower-case letters, digits, '_' or '-', starting with a letter or digit"
_SHOWN_CHARS = 64  # of a rejected value in a message: enough to recognise, never a huge echo


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}... ({len(text)} characters)"


def parse_role(where: str, value: object) -> int:
    """The role named by `value` (a key's config entry, a token's claim); ValueError naming `where`."""
    role = ROLES_BY_NAME.get(value) if isinstance(value, str) else None
    if role is None:
        raise ValueError(f"{where}: role {_shown(value)} is not one of reader, writer, admin")
    return role


def parse_tenant(where: str, value: object) -> str:
    """The tenant named by `value` ("" for none: the shared namespace), by the one rule for API
    keys, tokens and rate-limit buckets; ValueError naming `where`, never echoing a huge value."""
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string tenant id, got {type(value).__name__}")
    if value and not TENANT_PATTERN.fullmatch(value):
        raise ValueError(f"{where}: {_shown(value)} is not a valid tenant id ({TENANT_RULE})")
    return value
