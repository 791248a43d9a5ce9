"""Which placement a collection gets on Qdrant (its Location: store/qdrant_location.py).

Partitioned (the default): collections of one vector layout (dimension, distance, keyword
vectors or not) share one physical Qdrant collection, `_citadel_shared_<dim>_<distance>[_kw]`.
Each point's payload carries its tenant (a keyword index with `is_tenant`, so Qdrant keeps a
tenant's points together and builds its graph links per tenant) and its partition (unique to one
generation of one collection, made anew on every create), every call is filtered by both, and
point ids are uuid5 of the partition and the caller's id, so equal ids of two collections are
two points. This is Qdrant's own advice for many tenants: a cluster serves a bounded number of
collections, each costing shards on every node.

Dedicated: a physical collection of its own, as every collection had before partitioning. For
the tenants listed in `store.qdrant_dedicated_tenants`, everything under
`store.qdrant_placement = "dedicated"`, a collection with settings a shared collection cannot hold
per collection (any CollectionSpec field beyond the shareable ones below, e.g. its own shards),
one whose payload index types clash with another collection's in the shared one, and
collections made by an earlier Citadel (adopted as they are).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from citadel.server.store.base import GENERATION, CollectionSpec
from citadel.server.tenancy import tenant_of

PLACEMENTS = ("auto", "partitioned", "dedicated")
SHARED_PREFIX = "_citadel_shared_"
# The tenant value of the tenant-less namespace: not a valid tenant id (those start [a-z0-9]).
NO_TENANT = "_none"
# Spec fields every collection of a shared physical collection may set its own way (they live
# in the registry); a spec field not listed here (per-collection cluster settings: shards,
# replication, HNSW ...) set to other than its default needs a physical collection of its own.
SHAREABLE_FIELDS = frozenset(
    {
        "name",
        "dimension",
        "distance",
        "description",
        "indexed_fields",
        "created_at",
        "embedding_model",
        "fingerprint",
        "store_text",
        "keywords",
        "physical",
        "previous",
        "switched_at",
        "caught_up_at",
    }
)

# Layout settings each read passes itself (read consistency, rescoring's oversampling): a
# partition honours them from its registry entry, so they need no collection of its own.
PER_READ_LAYOUT_FIELDS = ("read_consistency", "quantization_oversampling")


@dataclass(frozen=True)
class PlacementPolicy:
    placement: str = "partitioned"
    dedicated_tenants: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Any, server: bool) -> PlacementPolicy:
        """`store.qdrant_placement` and `store.qdrant_dedicated_tenants`, checked; ValueError
        naming the setting. "auto" partitions on a Qdrant `server` only: qdrant-client's local
        mode has no payload indexes, so a partition's every call would scan the whole shared
        collection (search 91 ms against 1.1 ms at 1,000 collections, BENCHMARKS.md tenancy)."""
        placement = settings.qdrant_placement.strip().lower()
        if placement not in PLACEMENTS:
            raise ValueError(
                f"store.qdrant_placement: {settings.qdrant_placement!r} is not one of {', '.join(PLACEMENTS)}"
            )
        if placement == "auto":
            placement = "partitioned" if server else "dedicated"
        tenants = settings.qdrant_dedicated_tenants
        if not isinstance(tenants, list) or not all(isinstance(t, str) and t for t in tenants):
            raise ValueError("store.qdrant_dedicated_tenants: must be a list of tenant ids")
        return cls(placement=placement, dedicated_tenants=frozenset(tenants))

    def dedicated_because(self, spec: CollectionSpec) -> str:
        """Why `spec` gets a physical collection of its own ("": it shares one)."""
        if self.placement == "dedicated":
            return "store.qdrant_placement is dedicated"
        tenant = tenant_of(spec.name)
        if tenant and tenant in self.dedicated_tenants:
            return f"tenant {tenant!r} is in store.qdrant_dedicated_tenants"
        own = own_settings(spec)
        if own:
            return f"it has settings of its own ({', '.join(own)})"
        return ""


def own_settings(spec: CollectionSpec) -> list[str]:
    """Spec fields beyond the shareable ones that differ from their defaults."""
    out = []
    for f in dataclasses.fields(spec):
        if f.name in SHAREABLE_FIELDS:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            out.append(f.name)
            continue
        value = getattr(spec, f.name)
        if f.name == "layout":
            value = dataclasses.replace(value, **dict.fromkeys(PER_READ_LAYOUT_FIELDS))
        if value != default:
            out.append(f.name)
    return out


def family_of(store_name: str) -> str:
    """The collection a store name is, or is a generation of."""
    return store_name.split(GENERATION, 1)[0]


def shared_collection(spec: CollectionSpec) -> str:
    """The shared physical collection of `spec`'s vector layout."""
    return f"{SHARED_PREFIX}{spec.dimension}_{spec.distance}{'_kw' if spec.keywords else ''}"
