"""The real grpcurl binary against the running gateway: reflection, describe, a JSON call."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb


def grpcurl(*args: str) -> str:
    binary = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    out = subprocess.run([binary, "-plaintext", *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_list_shows_services(gateway):
    services = grpcurl(gateway.grpc_target, "list").split()
    assert {
        "citadel.vector.v1.VectorService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= set(services)


def test_describe_carries_proto_comments(gateway):
    out = grpcurl(gateway.grpc_target, "describe", "citadel.vector.v1.VectorService.SearchVectors")
    assert "rpc SearchVectors" in out
    assert "Finds the vectors closest to a query vector" in out
    out = grpcurl(gateway.grpc_target, "describe", "citadel.vector.v1.SearchVectorsRequest")
    assert "repeated float query_vector" in out and "exactly the collection's dimension" in out


def test_search_with_json_body(gateway):
    stub = gateway.stub()
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(name="grpcurl-docs", dimension=3, distance=1)
        )
    )
    stub.UpsertVectors(
        pb.UpsertVectorsRequest(
            collection="grpcurl-docs",
            vectors=[
                resources_pb2.Vector(id="a", embedding=[1, 0, 0]),
                resources_pb2.Vector(id="b", embedding=[0, 1, 0]),
            ],
        )
    )
    body = json.dumps({"collection": "grpcurl-docs", "query_vector": [0.9, 0.1, 0], "limit": 1})
    out = json.loads(
        grpcurl("-d", body, gateway.grpc_target, "citadel.vector.v1.VectorService/SearchVectors")
    )
    assert out["results"][0]["id"] == "a"
    assert out["queryTimeMs"] > 0
