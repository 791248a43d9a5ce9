"""What the fuzzers aim at part of the time, so generated requests get past `not found` into
validation, filters and the store: a tiny collection (dimension 2, every indexed field type,
vectors with metadata), one of the default model's dimension for query_text searches, and a
small batch job."""

from __future__ import annotations

import grpc
from google.protobuf import struct_pb2

from citadel.batch.v1 import batch_service_pb2, batch_service_pb2_grpc
from citadel.vector.v1 import resources_pb2, vector_service_pb2, vector_service_pb2_grpc

SMALL = "fuzz-small"
TEXT = "fuzz-text"
NAMES = (SMALL, TEXT)
TEXT_DIMENSION = 384  # the default local model's
MODEL = "general"  # the default model
VECTOR_IDS = tuple(f"v{i}" for i in range(8))
# Ids of the batch jobs seed() submitted (one small embed job), filled in at run time.
JOB_IDS: list[str] = []


def _metadata(i: int) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update({"tag": f"t{i % 3}", "n": i, "score": i / 2, "flag": i % 2 == 0, "nested": {"k": [i, "x"]}})
    return s


def seed(channel: grpc.Channel) -> None:
    """Creates both collections (idempotent), writes a few vectors into the small one and,
    once, submits an embed job."""
    stub = vector_service_pb2_grpc.VectorServiceStub(channel)
    fields = [
        resources_pb2.IndexedField(key=key, type=kind)
        for key, kind in (
            ("tag", resources_pb2.FIELD_TYPE_KEYWORD),
            ("n", resources_pb2.FIELD_TYPE_INTEGER),
            ("score", resources_pb2.FIELD_TYPE_FLOAT),
            ("flag", resources_pb2.FIELD_TYPE_BOOL),
        )
    ]
    for name, dimension, distance in (
        (SMALL, 2, resources_pb2.DISTANCE_EUCLID),
        (TEXT, TEXT_DIMENSION, resources_pb2.DISTANCE_COSINE),
    ):
        collection = resources_pb2.Collection(
            name=name, dimension=dimension, distance=distance, indexed_fields=fields
        )
        try:
            stub.CreateCollection(
                vector_service_pb2.CreateCollectionRequest(collection=collection), timeout=30
            )
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
    vectors = [
        resources_pb2.Vector(id=f"v{i}", embedding=[float(i), 1.0 - i], metadata=_metadata(i))
        for i in range(8)
    ]
    stub.UpsertVectors(vector_service_pb2.UpsertVectorsRequest(collection=SMALL, vectors=vectors), timeout=30)
    if not JOB_IDS:
        job = batch_service_pb2_grpc.BatchServiceStub(channel).SubmitBatchJob(
            batch_service_pb2.SubmitBatchJobRequest(
                operation=batch_service_pb2.OPERATION_EMBED,
                model=MODEL,
                items=[batch_service_pb2.BatchItem(id="0", text="a small job")],
            ),
            timeout=30,
        )
        JOB_IDS.append(job.job.id)
