"""The gateway raises its open-files limit at start, and running out of files (or disk) is
UNAVAILABLE naming it, not INTERNAL: the embedded engine holds files open per collection."""

from __future__ import annotations

import os
import resource
import subprocess

import grpc
import httpx
import pytest

from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.gateway_process import GatewayProcess


def _nofile(pid: int) -> tuple[int, int]:
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open files line")


@pytest.fixture
def gateway(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip(f"the hard open-files limit here is {hard}: nothing to raise to")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # inherited by the gateway
    try:
        proc = GatewayProcess(tmp_path / "data").start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    yield proc
    proc.stop()


def test_the_gateway_raises_its_soft_open_files_limit_to_the_hard_one(gateway):
    soft, hard = _nofile(gateway.proc.pid)
    assert soft == hard and soft > 256


def test_running_out_of_open_files_is_unavailable_naming_it(gateway):
    stub = gateway.stub()
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=rpb.Collection(name="first", dimension=3, distance=rpb.DISTANCE_COSINE)
        )
    )
    # Leave the gateway a few descriptors more than it holds now: collections soon run out.
    held = len(os.listdir(f"/proc/{gateway.proc.pid}/fd"))
    subprocess.run(["prlimit", f"--pid={gateway.proc.pid}", f"--nofile={held + 8}:{held + 8}"], check=True)
    refused = None
    for i in range(40):
        try:
            stub.CreateCollection(
                pb.CreateCollectionRequest(
                    collection=rpb.Collection(name=f"c{i}", dimension=3, distance=rpb.DISTANCE_COSINE)
                ),
                timeout=30,
            )
        except grpc.RpcError as e:
            refused, refused_over_grpc = e, f"c{i}"
            break
    assert refused is not None, "40 collections fitted in 8 descriptors"
    assert refused.code() == grpc.StatusCode.UNAVAILABLE, refused.details()
    assert "ran out of open files" in refused.details()
    # Descriptors come and go (a failed create closes what it opened), so REST may fit one or
    # two more before it is refused too; what it must never answer is a 500.
    over_rest = None
    made_over_rest = []
    for i in range(40):
        over_rest = httpx.post(
            f"{gateway.http_url}/v1/collections",
            json={"name": f"rest{i}", "dimension": 3, "distance": "DISTANCE_COSINE"},
        )
        if over_rest.status_code != 200:
            break
        made_over_rest.append(f"rest{i}")
    assert over_rest.status_code == 503, over_rest.text
    assert "ran out of open files" in over_rest.json()["message"]
    refused_name = f"rest{len(made_over_rest)}"
    # The failed creations left nothing half-made, and what exists still answers.
    names = [c.name for c in stub.ListCollections(pb.ListCollectionsRequest()).collections]
    assert "first" in names and refused_name not in names and refused_over_grpc not in names
    assert stub.GetCollection(pb.GetCollectionRequest(name="first")).collection.name == "first"
    assert "Traceback" not in gateway.log()
