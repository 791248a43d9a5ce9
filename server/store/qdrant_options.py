"""How the gateway reaches a Qdrant server, and how the collections it creates there are laid out.

Transport (`[store]` qdrant_*): gRPC by default (Qdrant's gRPC port beside the REST URL), each
request bounded by `qdrant_timeout_seconds`, over `qdrant_pool_size` connections kept open.

Layout, fixed when a collection is created (Qdrant cannot reshard it later): shards,
replication, write consistency, the HNSW graph, scalar int8 quantization (searches then
rescore an oversampled candidate list with the original vectors), vectors on disk; and the
read consistency of every read. 0 or "" leaves a setting to Qdrant's own default, so a single
node needs none of them. They are defaults: a collection's own layout (CreateCollection's
`collection.layout`, store/layout.py) overrides each setting it sets (`with_layout`).

qdrant-client is imported only inside the functions that build its arguments: settings are
validated here at load, and the embedded default never loads the client.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from citadel.server.errors import invalid
from citadel.server.store.layout import CollectionLayout

READ_CONSISTENCIES = ("all", "majority", "quorum")
QUANTIZATIONS = ("int8",)
# Reconnect quickly after an outage (gRPC's own backoff grows to 120 s, and a channel in
# backoff fails every call at once), and notice a peer that vanished without closing.
_GRPC_CHANNEL_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.min_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 2000,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
}


@dataclass(frozen=True)
class QdrantOptions:
    prefer_grpc: bool = True
    grpc_port: int = 6334
    timeout_seconds: float = 10.0
    pool_size: int = 4
    shard_number: int = 0
    replication_factor: int = 0
    write_consistency_factor: int = 0
    read_consistency: str = ""  # "" | all | majority | quorum | a number of replicas
    hnsw_m: int = 0
    hnsw_ef_construct: int = 0
    quantization: str = ""  # "" | int8
    quantization_oversampling: float = 2.0
    on_disk_vectors: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> QdrantOptions:
        """The `[store]` qdrant_* settings, checked; ValueError naming the setting."""
        options = cls(
            prefer_grpc=settings.qdrant_prefer_grpc,
            grpc_port=settings.qdrant_grpc_port,
            timeout_seconds=settings.qdrant_timeout_seconds,
            pool_size=settings.qdrant_pool_size,
            shard_number=settings.qdrant_shard_number,
            replication_factor=settings.qdrant_replication_factor,
            write_consistency_factor=settings.qdrant_write_consistency_factor,
            read_consistency=settings.qdrant_read_consistency.strip().lower(),
            hnsw_m=settings.qdrant_hnsw_m,
            hnsw_ef_construct=settings.qdrant_hnsw_ef_construct,
            quantization=settings.qdrant_quantization.strip().lower(),
            quantization_oversampling=settings.qdrant_quantization_oversampling,
            on_disk_vectors=settings.qdrant_on_disk_vectors,
        )
        options.check()
        return options

    def check(self) -> None:
        if not 1 <= self.grpc_port <= 65535:
            raise ValueError(f"store.qdrant_grpc_port: {self.grpc_port} is not a port (1-65535)")
        if not self.timeout_seconds > 0:
            raise ValueError(f"store.qdrant_timeout_seconds: must be more than 0, got {self.timeout_seconds}")
        for key, value, low in (
            ("store.qdrant_pool_size", self.pool_size, 1),
            ("store.qdrant_shard_number", self.shard_number, 0),
            ("store.qdrant_replication_factor", self.replication_factor, 0),
            ("store.qdrant_write_consistency_factor", self.write_consistency_factor, 0),
            ("store.qdrant_hnsw_m", self.hnsw_m, 0),
            ("store.qdrant_hnsw_ef_construct", self.hnsw_ef_construct, 0),
        ):
            if value < low:
                raise ValueError(f"{key}: must be at least {low} (0: Qdrant's default), got {value}")
        if self.hnsw_ef_construct and self.hnsw_ef_construct < 4:
            raise ValueError(
                f"store.qdrant_hnsw_ef_construct: Qdrant needs at least 4, got {self.hnsw_ef_construct}"
            )
        if self.write_consistency_factor > max(self.replication_factor, 1):
            raise ValueError(
                f"store.qdrant_write_consistency_factor: {self.write_consistency_factor} is more than "
                f"store.qdrant_replication_factor ({self.replication_factor or 'default 1'}): no write could succeed"
            )
        rc = self.read_consistency
        if rc and rc not in READ_CONSISTENCIES and not (rc.isdigit() and int(rc) >= 1):
            raise ValueError(
                f"store.qdrant_read_consistency: {rc!r} is not '', {', '.join(READ_CONSISTENCIES)} "
                "or a number of replicas"
            )
        if self.quantization and self.quantization not in QUANTIZATIONS:
            raise ValueError(f"store.qdrant_quantization: {self.quantization!r} is not '' or int8")
        if not self.quantization_oversampling >= 1:
            raise ValueError(
                f"store.qdrant_quantization_oversampling: must be at least 1, got {self.quantization_oversampling}"
            )

    def with_layout(self, layout: CollectionLayout) -> QdrantOptions:
        """These defaults with a collection's own settings over them."""
        rc = layout.read_consistency
        chosen = {
            "shard_number": layout.shard_number,
            "replication_factor": layout.replication_factor,
            "write_consistency_factor": layout.write_consistency_factor,
            "read_consistency": "1" if rc == "one" else rc,  # one replica: Qdrant's factor 1
            "hnsw_m": layout.hnsw_m,
            "hnsw_ef_construct": layout.hnsw_ef_construct,
            "quantization": "" if layout.quantization == "none" else layout.quantization,
            "quantization_oversampling": layout.quantization_oversampling,
            "on_disk_vectors": layout.on_disk_vectors,
        }
        return dataclasses.replace(self, **{k: v for k, v in chosen.items() if v is not None})

    def check_layout(self, layout: CollectionLayout) -> QdrantOptions:
        """`with_layout`, refused INVALID_ARGUMENT when the merge asks for more acknowledging
        copies than there are (each bound alone is checked where the request came in)."""
        merged = self.with_layout(layout)
        replicas = max(merged.replication_factor, 1)
        if merged.write_consistency_factor > replicas:
            field = "write_consistency_factor" if layout.write_consistency_factor else "replication_factor"
            source = "collection.layout" if layout.replication_factor else "store.qdrant_replication_factor"
            raise invalid(
                f"collection.layout.{field}",
                f"write_consistency_factor {merged.write_consistency_factor} is more than the replication "
                f"factor ({replicas}, from {source}): no write could succeed",
            )
        return merged

    def client_kwargs(self) -> dict[str, Any]:
        """AsyncQdrantClient's arguments besides url and api_key."""
        kwargs: dict[str, Any] = {
            "prefer_grpc": self.prefer_grpc,
            "grpc_port": self.grpc_port,
            "timeout": math.ceil(self.timeout_seconds),  # the client takes whole seconds
            # Its version check is a blocking request in a thread at construction, which
            # warns on stderr when Qdrant is down; reachability is checked by the store.
            "check_compatibility": False,
        }
        if self.prefer_grpc:
            kwargs["pool_size"] = self.pool_size  # channels, each multiplexing many calls
            kwargs["grpc_options"] = dict(_GRPC_CHANNEL_OPTIONS)
        else:
            import httpx

            # Keep-alive for every URL (qdrant-client turns it off for loopback ones unless told).
            kwargs["limits"] = httpx.Limits(max_connections=None, max_keepalive_connections=self.pool_size)
        return kwargs

    def collection_kwargs(self) -> dict[str, Any]:
        """create_collection's layout arguments (the vectors' own are `vector_params`)."""
        from qdrant_client import models

        kwargs: dict[str, Any] = {}
        for name in ("shard_number", "replication_factor", "write_consistency_factor"):
            if getattr(self, name):
                kwargs[name] = getattr(self, name)
        if self.hnsw_m or self.hnsw_ef_construct:
            kwargs["hnsw_config"] = models.HnswConfigDiff(
                m=self.hnsw_m or None, ef_construct=self.hnsw_ef_construct or None
            )
        if self.quantization == "int8":
            kwargs["quantization_config"] = models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            )
        return kwargs

    def vector_params(self, dimension: int, distance: Any) -> Any:
        from qdrant_client import models

        return models.VectorParams(size=dimension, distance=distance, on_disk=self.on_disk_vectors or None)

    def read_kwargs(self) -> dict[str, Any]:
        """The read consistency argument of query_points, retrieve, scroll and facet."""
        rc = self.read_consistency
        if not rc:
            return {}
        if rc.isdigit():
            return {"consistency": int(rc)}
        from qdrant_client import models

        return {"consistency": models.ReadConsistencyType(rc)}

    def search_params(self, exact: bool) -> Any:
        """A search's params: exact, or with quantized candidates rescored by the originals."""
        from qdrant_client import models

        if exact:
            return models.SearchParams(exact=True)
        if self.quantization:
            return models.SearchParams(
                quantization=models.QuantizationSearchParams(
                    rescore=True, oversampling=self.quantization_oversampling
                )
            )
        return None
