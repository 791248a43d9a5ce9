"""CollectionLayout, the API message, to and from the stores' layout: every bound checked here.

The bounds are Qdrant's where it has them (at least 1 shard, replica and acknowledging copy;
ef_construct at least 4; oversampling at least 1) and ours above: more shards, replicas, graph
edges or oversampling than these is a typing mistake long before it is a deployment, and each
one costs memory on every node. adapters/openapi.py states the same numbers from here.
"""

from __future__ import annotations

from citadel.server.errors import invalid
from citadel.server.store.layout import CollectionLayout
from citadel.vector.v1 import resources_pb2

SHARD_NUMBER = (1, 256)
REPLICATION_FACTOR = (1, 16)
HNSW_M = (4, 128)
HNSW_EF_CONSTRUCT = (4, 1024)
OVERSAMPLING = (1.0, 16.0)

READ_CONSISTENCIES = {
    resources_pb2.READ_CONSISTENCY_ONE: "one",
    resources_pb2.READ_CONSISTENCY_MAJORITY: "majority",
    resources_pb2.READ_CONSISTENCY_QUORUM: "quorum",
    resources_pb2.READ_CONSISTENCY_ALL: "all",
}
QUANTIZATIONS = {resources_pb2.QUANTIZATION_NONE: "none", resources_pb2.QUANTIZATION_INT8: "int8"}
_READ_CONSISTENCY_ENUMS = {v: k for k, v in READ_CONSISTENCIES.items()}
_QUANTIZATION_ENUMS = {v: k for k, v in QUANTIZATIONS.items()}


def from_message(field: str, m: resources_pb2.CollectionLayout) -> CollectionLayout:
    """The layout a CreateCollection asks for, checked; INVALID_ARGUMENT names the field."""
    shards = _within(f"{field}.shard_number", m, "shard_number", SHARD_NUMBER)
    replicas = _within(f"{field}.replication_factor", m, "replication_factor", REPLICATION_FACTOR)
    acks = _within(
        f"{field}.write_consistency_factor", m, "write_consistency_factor", (1, REPLICATION_FACTOR[1])
    )
    if acks is not None and replicas is not None and acks > replicas:
        raise invalid(
            f"{field}.write_consistency_factor",
            f"{acks} is more than replication_factor ({replicas}): no write could succeed",
        )
    read = None
    if m.read_consistency != resources_pb2.READ_CONSISTENCY_UNSPECIFIED:
        read = READ_CONSISTENCIES.get(m.read_consistency)
        if read is None:
            raise invalid(f"{field}.read_consistency", f"{m.read_consistency} is not a ReadConsistency value")
    kind = None
    if m.quantization.type != resources_pb2.QUANTIZATION_UNSPECIFIED:
        kind = QUANTIZATIONS.get(m.quantization.type)
        if kind is None:
            raise invalid(f"{field}.quantization.type", f"{m.quantization.type} is not a Quantization value")
    oversampling = None
    if m.quantization.HasField("oversampling"):
        oversampling = m.quantization.oversampling
        low, high = OVERSAMPLING
        if not low <= oversampling <= high:  # NaN fails too
            raise invalid(
                f"{field}.quantization.oversampling",
                f"must be between {low:g} and {high:g}, got {oversampling}",
            )
        if kind == "none":
            raise invalid(
                f"{field}.quantization.oversampling",
                "applies to quantized vectors, and type is QUANTIZATION_NONE",
            )
    return CollectionLayout(
        shard_number=shards,
        replication_factor=replicas,
        write_consistency_factor=acks,
        read_consistency=read,
        hnsw_m=_within(f"{field}.hnsw.m", m.hnsw, "m", HNSW_M),
        hnsw_ef_construct=_within(f"{field}.hnsw.ef_construct", m.hnsw, "ef_construct", HNSW_EF_CONSTRUCT),
        quantization=kind,
        quantization_oversampling=oversampling,
        on_disk_vectors=m.on_disk_vectors if m.HasField("on_disk_vectors") else None,
    )


def to_message(layout: CollectionLayout) -> resources_pb2.CollectionLayout:
    """The settings the collection chose, as the API shows them (unset: the default)."""
    m = resources_pb2.CollectionLayout(
        shard_number=layout.shard_number,
        replication_factor=layout.replication_factor,
        write_consistency_factor=layout.write_consistency_factor,
        on_disk_vectors=layout.on_disk_vectors,
    )
    if layout.read_consistency is not None:
        m.read_consistency = _READ_CONSISTENCY_ENUMS[layout.read_consistency]
    if layout.hnsw_m is not None:
        m.hnsw.m = layout.hnsw_m
    if layout.hnsw_ef_construct is not None:
        m.hnsw.ef_construct = layout.hnsw_ef_construct
    if layout.quantization is not None:
        m.quantization.type = _QUANTIZATION_ENUMS[layout.quantization]
    if layout.quantization_oversampling is not None:
        m.quantization.oversampling = layout.quantization_oversampling
    return m


def _within(field: str, m, name: str, bounds: tuple[int, int]) -> int | None:
    if not m.HasField(name):
        return None
    value = getattr(m, name)
    low, high = bounds
    if not low <= value <= high:
        raise invalid(field, f"must be between {low} and {high}, got {value}")
    return value
