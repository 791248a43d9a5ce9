"""Tenant isolation by naming: a tenant's collection `docs` is stored as `<tenant>.docs`.

User-visible collection names cannot contain '.', so the physical names of different tenants
(and of the shared, tenant-less namespace) never collide. A tenant only ever resolves names
inside its own prefix, so another tenant's collection is simply not found.
"""

from __future__ import annotations

SEPARATOR = "."


def physical(tenant: str, name: str) -> str:
    return f"{tenant}{SEPARATOR}{name}" if tenant else name


def visible(tenant: str, physical_name: str) -> str | None:
    """The name `tenant` knows `physical_name` by, or None when it is not the tenant's."""
    if tenant:
        prefix = tenant + SEPARATOR
        return physical_name[len(prefix) :] if physical_name.startswith(prefix) else None
    return None if SEPARATOR in physical_name else physical_name
