"""A collection's own cluster and storage settings (the API's CollectionLayout), as stores keep them.

Every field is None when the caller left it to the gateway's default, so a stored collection
says which settings it chose and which it follows: on a Qdrant server the defaults are the
`[store] qdrant_*` settings (store/qdrant_options.py merges these over them), on the embedded
engine its own tuning (store/edge_collection.py HnswParams). Bounds are checked where requests
come in (servicers/collection_layout.py); a stored layout is trusted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

ReadConsistency = Literal["one", "majority", "quorum", "all"]
QuantizationKind = Literal["none", "int8"]
# What one process cannot honour: the embedded engine keeps one copy of one shard.
CLUSTER_FIELDS = ("shard_number", "replication_factor", "write_consistency_factor", "read_consistency")


@dataclass(frozen=True)
class CollectionLayout:
    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    read_consistency: ReadConsistency | None = None
    hnsw_m: int | None = None
    hnsw_ef_construct: int | None = None
    quantization: QuantizationKind | None = None
    quantization_oversampling: float | None = None
    on_disk_vectors: bool | None = None

    def chosen(self) -> dict[str, object]:
        """The settings the collection chose itself, by name: what a store persists."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_chosen(cls, raw: dict | None) -> CollectionLayout:
        """Reads what `chosen` wrote; names a later version added are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (raw or {}).items() if k in known})

    def cluster_settings(self) -> list[str]:
        """The chosen settings only a Qdrant cluster honours (sharding, replicas, consistency)."""
        return [name for name in CLUSTER_FIELDS if getattr(self, name) is not None]
