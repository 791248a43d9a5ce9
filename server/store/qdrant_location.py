"""Where one generation of a collection keeps its points on Qdrant: a physical collection, and
in a shared one (store/qdrant_placement.py) the tenant and partition every point carries in its
payload and every call filters by. Point ids there are uuid5 of the partition and the caller's
id, so two collections holding equal ids hold two points.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from qdrant_client import models

from citadel.server.store.base import GENERATION, RESERVED_PAYLOAD_KEY, CollectionSpec
from citadel.server.store.point_ids import point_id
from citadel.server.store.qdrant_filter import to_qdrant_filter
from citadel.server.store.qdrant_placement import NO_TENANT, shared_collection, tenant_of
from citadel.vector.v1 import filter_pb2

# Payload keys of a partitioned point, under our reserved entry (user keys cannot start with it).
TENANT_FIELD = f"{RESERVED_PAYLOAD_KEY}.tenant"
PARTITION_FIELD = f"{RESERVED_PAYLOAD_KEY}.partition"
_NAMESPACE = uuid.UUID("0b7e4d1a-3c55-5f0e-8a61-2d9c4e7f1b30")


@dataclass(frozen=True)
class Location:
    """Where one generation's points are: a physical collection, and in a shared one the
    partition and tenant every point carries and every call filters by."""

    collection: str
    partition: str = ""  # "": dedicated, the whole physical collection is this generation's
    tenant: str = ""

    @property
    def shared(self) -> bool:
        return bool(self.partition)

    def point_id(self, user_id: str) -> str:
        if not self.partition:
            return point_id(user_id)  # as before partitioning: adopted collections keep their ids
        # "\0" never occurs in a partition, so (partition, id) pairs map one to one.
        return str(uuid.uuid5(_NAMESPACE, f"{self.partition}\0{user_id}"))

    def scope(self) -> models.Filter | None:
        """The filter that keeps a call inside this partition (None: dedicated)."""
        if not self.partition:
            return None
        return models.Filter(
            must=[
                models.FieldCondition(key=TENANT_FIELD, match=models.MatchValue(value=self.tenant)),
                models.FieldCondition(key=PARTITION_FIELD, match=models.MatchValue(value=self.partition)),
            ]
        )

    def scoped(self, caller: models.Filter | None) -> models.Filter | None:
        """The caller's filter, inside this partition."""
        scope = self.scope()
        if scope is None or caller is None:
            return scope or caller
        return models.Filter(must=[*scope.must, caller])

    def filter(self, caller: filter_pb2.Filter | None) -> models.Filter | None:
        """The caller's filter (the contract's), inside this partition, its ids this location's."""
        return self.scoped(to_qdrant_filter(caller, self.point_id))

    def stamp(self, payload: dict) -> dict:
        """A point's payload with the partition's tenant and partition in our entry."""
        if self.partition:
            payload[RESERVED_PAYLOAD_KEY]["tenant"] = self.tenant
            payload[RESERVED_PAYLOAD_KEY]["partition"] = self.partition
        return payload

    def as_payload(self) -> dict:
        return {"collection": self.collection, "partition": self.partition, "tenant": self.tenant}

    @classmethod
    def from_payload(cls, d: dict) -> Location:
        return cls(d.get("collection", ""), d.get("partition", ""), d.get("tenant", ""))


def new_location(spec: CollectionSpec, generation: str, dedicated: bool) -> Location:
    """A fresh location for a new generation: unique, so a replica still holding the location
    of a deleted collection of the same name never reaches the new one's points."""
    tag = uuid.uuid4().hex[:12]
    if dedicated:
        return Location(collection=f"{generation}{GENERATION}{tag}")
    return Location(
        collection=shared_collection(spec),
        partition=f"{generation}/{tag}",
        tenant=tenant_of(spec.name) or NO_TENANT,
    )
