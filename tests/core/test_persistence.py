"""Data written through the gateway survives a restart on the same data dir."""

from __future__ import annotations

from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb


def test_data_persists_across_restart(fresh_gateway):
    stub = fresh_gateway.stub()
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name="kept", dimension=3, distance=resources_pb2.DISTANCE_COSINE, description="d"
            )
        )
    )
    vectors = [resources_pb2.Vector(id=f"id-{i}", embedding=[1, i, 2]) for i in range(50)]
    for v in vectors:
        v.metadata.update({"i": int(v.embedding[1])})
    stub.UpsertVectors(pb.UpsertVectorsRequest(collection="kept", vectors=vectors))

    assert fresh_gateway.stop() == 0
    stub = fresh_gateway.start().stub()

    got = stub.GetCollection(pb.GetCollectionRequest(name="kept")).collection
    assert (got.dimension, got.description, got.vector_count) == (3, "d", 50)
    v = stub.GetVector(pb.GetVectorRequest(collection="kept", id="id-7")).vector
    assert v.metadata["i"] == 7
    hits = stub.SearchVectors(pb.SearchVectorsRequest(collection="kept", query_vector=[1, 7, 2], limit=1))
    assert hits.results[0].id == "id-7"
