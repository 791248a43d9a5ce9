"""Every RPC × every kind of caller gets the outcome its declared role and tenant imply.

The RPCs and their required roles come from the descriptors; a sample request per RPC is
kept here, and a test fails when an RPC has none, so a new RPC cannot skip the matrix.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from citadel.admin.v1 import admin_service_pb2 as admin
from citadel.batch.v1 import batch_service_pb2 as batch
from citadel.options.v1 import options_pb2
from citadel.server.descriptors import SERVICES
from citadel.server.methods import method_specs
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.adapters.protocols import Protocols
from tests.support.auth_config import token, write_config
from tests.support.gateway_process import GatewayProcess
from tests.support.grpc_calls import call_grpc

SPECS = {spec.name: spec for spec in method_specs(SERVICES)}
ROLE_OF = {
    "reader": options_pb2.ROLE_READER,
    "writer": options_pb2.ROLE_WRITER,
    "admin": options_pb2.ROLE_ADMIN,
}


def samples(name: str, job_id: str = "") -> dict:
    """A request per RPC that succeeds for an allowed caller of tenant acme on collection `name`
    (and job `job_id` of the same tenant)."""
    v = resources_pb2.Vector(id="v2", embedding=[0, 1, 0, 0])
    item = batch.BatchItem(id="b1", embedding=[1, 1, 0, 0])
    return {
        "SubmitBatchJob": batch.SubmitBatchJobRequest(
            collection=name, operation=batch.OPERATION_BULK_UPSERT, items=[item]
        ),
        "UploadBatchJob": [
            batch.UploadBatchJobRequest(
                header=batch.UploadBatchJobHeader(collection=name, operation=batch.OPERATION_BULK_UPSERT)
            ),
            batch.UploadBatchJobRequest(items=batch.BatchItemList(items=[item])),
        ],
        "GetBatchJob": batch.GetBatchJobRequest(id=job_id),
        "ListBatchJobs": batch.ListBatchJobsRequest(),
        "CancelBatchJob": batch.CancelBatchJobRequest(id=job_id),
        "WatchBatchJob": batch.WatchBatchJobRequest(id=job_id),
        "CreateCollection": pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=name, dimension=4, distance=resources_pb2.DISTANCE_COSINE
            )
        ),
        "GetCollection": pb.GetCollectionRequest(name=name),
        "ListCollections": pb.ListCollectionsRequest(),
        "DeleteCollection": pb.DeleteCollectionRequest(name=name),
        "InsertVector": pb.InsertVectorRequest(collection=name, vector=v),
        "UpsertVectors": pb.UpsertVectorsRequest(collection=name, vectors=[v]),
        "GetVector": pb.GetVectorRequest(collection=name, id="v1"),
        "DeleteVectors": pb.DeleteVectorsRequest(collection=name, ids=pb.VectorIds(ids=["v1"])),
        "SearchVectors": pb.SearchVectorsRequest(collection=name, query_vector=[1, 0, 0, 0]),
        "ScrollVectors": pb.ScrollVectorsRequest(collection=name),
        "QueryVectors": pb.QueryVectorsRequest(collection=name, nearest=pb.NearestQuery(vector=[1, 0, 0, 0])),
        "FacetVectors": pb.FacetVectorsRequest(collection=name, key="tag"),
        "CountVectors": pb.CountVectorsRequest(collection=name),
        "GenerateEmbedding": pb.GenerateEmbeddingRequest(text="hello"),
        "ListModels": pb.ListModelsRequest(),
        "GetCacheStats": admin.GetCacheStatsRequest(),
        "GetServiceStatus": admin.GetServiceStatusRequest(),
        "FlushCache": admin.FlushCacheRequest(),
    }


# Outcome for an allowed caller of the owning tenant when the sample names an existing collection.
SAME_TENANT = {"CreateCollection": "ALREADY_EXISTS"}
# Outcome for another tenant, where it differs from NOT_FOUND for collection-scoped RPCs and OK for the rest:
# creating the name makes the tenant its own; a job of another tenant does not exist for it.
OTHER_TENANT = {
    "CreateCollection": "OK",
    "UploadBatchJob": "NOT_FOUND",
    "GetBatchJob": "NOT_FOUND",
    "CancelBatchJob": "NOT_FOUND",
    "WatchBatchJob": "NOT_FOUND",
}
CALLERS = ["none", "bad-key", "expired-token", "reader", "writer", "admin", "jwt-reader", "other-tenant"]


def test_every_rpc_has_a_sample():
    assert set(samples("x")) == set(SPECS), "add a sample request for each new RPC"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    creds = write_config(root / "citadel.toml")
    proc = GatewayProcess(root / "data", args=["--config", str(creds.config_path)]).start()
    yield proc, creds
    proc.stop()


def metadata_for(caller: str, creds) -> tuple:
    if caller == "none":
        return ()
    if caller == "bad-key":
        return (("authorization", "Bearer ck_admin_not-the-secret"),)
    if caller == "expired-token":
        return (("authorization", f"Bearer {token('admin', 'acme', expires_in=-60)}"),)
    if caller == "jwt-reader":
        return (("authorization", f"Bearer {token('reader', 'acme')}"),)
    return creds.bearer(caller)


def expected(method: str, caller: str) -> str:
    spec = SPECS[method]
    if caller in ("none", "bad-key", "expired-token"):
        return "UNAUTHENTICATED"
    role = {"jwt-reader": "reader", "other-tenant": "admin"}.get(caller, caller)
    if ROLE_OF[role] < spec.access.role:
        return "PERMISSION_DENIED"
    if caller == "other-tenant":
        return OTHER_TENANT.get(method, "NOT_FOUND" if spec.access.collection_field else "OK")
    return SAME_TENANT.get(method, "OK")


@pytest.mark.parametrize("protocol", ["grpc", "rest", "graphql"])
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method", sorted(SPECS))
def test_auth_matrix(secured, method, caller, protocol):
    proc, creds = secured
    spec = SPECS[method]
    if protocol != "grpc" and (spec.client_streaming or spec.server_streaming):
        pytest.skip("streams over REST/GraphQL are covered by tests/adapters/test_streaming.py")
    channel = proc.channel()
    name = f"m-{uuid.uuid4().hex[:8]}"
    setup = samples(name)
    assert (
        call_grpc(channel, SPECS["CreateCollection"], setup["CreateCollection"], creds.bearer("admin"))[0]
        == "OK"
    )
    seed = pb.UpsertVectorsRequest(
        collection=name, vectors=[resources_pb2.Vector(id="v1", embedding=[1, 0, 0, 0])]
    )
    assert call_grpc(channel, SPECS["UpsertVectors"], seed, creds.bearer("admin"))[0] == "OK"
    code, submitted = call_grpc(
        channel, SPECS["SubmitBatchJob"], setup["SubmitBatchJob"], creds.bearer("admin")
    )
    assert code == "OK", submitted
    setup = samples(name, submitted.job.id)

    metadata = metadata_for(caller, creds)
    if protocol == "grpc":
        code, reply = call_grpc(channel, spec, setup[method], metadata)
    else:
        with httpx.Client(base_url=proc.http_url, timeout=30) as http:
            outcome = getattr(Protocols(channel, http), protocol)(spec, setup[method], headers=dict(metadata))
        code, reply = outcome.code.name, outcome.message
    assert code == expected(method, caller), reply


def test_listing_shows_only_own_tenant(secured):
    proc, creds = secured
    channel = proc.channel()
    mine = f"list-{uuid.uuid4().hex[:8]}"
    create = samples(mine)["CreateCollection"]
    assert call_grpc(channel, SPECS["CreateCollection"], create, creds.bearer("admin"))[0] == "OK"
    _, acme = call_grpc(
        channel, SPECS["ListCollections"], pb.ListCollectionsRequest(page_size=1000), creds.bearer("reader")
    )
    _, globex = call_grpc(
        channel,
        SPECS["ListCollections"],
        pb.ListCollectionsRequest(page_size=1000),
        creds.bearer("other-tenant"),
    )
    _, shared = call_grpc(
        channel, SPECS["ListCollections"], pb.ListCollectionsRequest(page_size=1000), creds.bearer("root")
    )
    assert mine in [c.name for c in acme.collections]
    assert mine not in [c.name for c in globex.collections]
    assert mine not in [c.name for c in shared.collections]
    assert all("." not in c.name for c in acme.collections)  # physical names never leak


def test_secrets_never_reach_the_log(secured):
    proc, creds = secured
    call_grpc(proc.channel(), SPECS["ListCollections"], pb.ListCollectionsRequest(), creds.bearer("reader"))
    call_grpc(
        proc.channel(),
        SPECS["ListCollections"],
        pb.ListCollectionsRequest(),
        (("authorization", "Bearer ck_admin_wrong"),),
    )
    log = proc.log()
    for key in creds.keys.values():
        assert key.split("_", 2)[2] not in log
    assert "ck_admin_wrong" not in log
    assert "test-secret-that-is-long-enough" not in log


def test_health_and_reflection_need_no_credentials(secured):
    import subprocess
    import sys
    from pathlib import Path

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    proc, _ = secured
    reply = health_pb2_grpc.HealthStub(proc.channel()).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    grpcurl = Path(sys.executable).parent / "grpcurl"
    listed = subprocess.run(
        [str(grpcurl), "-plaintext", proc.grpc_target, "list"], capture_output=True, text=True, timeout=30
    )
    assert listed.returncode == 0 and "citadel.vector.v1.VectorService" in listed.stdout
