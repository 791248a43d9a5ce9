"""Tenant isolation by naming: a tenant's collection `docs` is stored as `<tenant>.docs`.

User-visible collection names cannot contain '.', so the physical names of different tenants
(and of the shared, tenant-less namespace) never collide. A tenant only ever resolves names
inside its own prefix, so another tenant's collection is simply not found.
"""

from __future__ import annotations

import re

from citadel.server.store.base import GENERATION

SEPARATOR = "."


def physical(tenant: str, name: str) -> str:
    return f"{tenant}{SEPARATOR}{name}" if tenant else name


def tenant_of(physical_name: str) -> str:
    """The tenant a physical name (`acme.docs`, `acme.docs~9f2c`) belongs to; "" for none."""
    base = physical_name.split(GENERATION, 1)[0]
    return base.split(SEPARATOR, 1)[0] if SEPARATOR in base else ""


def visible(tenant: str, physical_name: str) -> str | None:
    """The name `tenant` knows `physical_name` by, or None when it is not the tenant's (or is
    a generation of a collection, store/base.py, which no caller names)."""
    if GENERATION in physical_name:
        return None
    if tenant:
        prefix = tenant + SEPARATOR
        return physical_name[len(prefix) :] if physical_name.startswith(prefix) else None
    return None if SEPARATOR in physical_name else physical_name


def key_parts(*parts: str) -> str:
    """Parts of a Redis key, each prefixed by its UTF-8 length as Lua's string.len counts it
    (`4:acme:3:x:y`), so no choice of tenant or caller-given value (idempotency key, scope) can
    make two different tuples one key."""
    return ":".join(f"{len(p.encode())}:{p}" for p in parts)


def in_callers_terms(tenant: str, message: str) -> str:
    """`message` with the tenant's physical names (`'acme.films'`) as the caller knows them
    (`'films'`): stores and servicers name the stored collection, a caller must see its own."""
    if not tenant:
        return message  # the shared namespace's physical names are its visible names
    return re.sub(r"(['\"])" + re.escape(tenant + SEPARATOR), r"\1", message)
