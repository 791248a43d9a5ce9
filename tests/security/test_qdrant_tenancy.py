"""Tenants sharing physical Qdrant collections (issue 22 item 1): a real gateway on the
Qdrant-server store code (qdrant-client's local mode, partitioned: every collection of one
vector layout is a partition of one physical collection), auth on, tenants acme and globex.

Both make a collection of the same name and write the same ids with the same metadata (their
vectors differ, and globex writes one id more); every read over gRPC, REST and GraphQL sees only
the caller's own points, and a tenant deleting its collection leaves the other's whole.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from citadel.vector.v1 import filter_pb2 as fpb
from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.security.conftest import Secured, start_secured
from tests.security.protocol_calls import PROTOCOLS, call

OWNER = {"admin": [1.0, 0.0, 0.0], "other-tenant": [0.0, 1.0, 0.0]}  # each tenant's vectors
IDS = {"admin": ["a", "b"], "other-tenant": ["a", "b", "c"]}


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory) -> Secured:
    gateway = start_secured(
        tmp_path_factory.mktemp("qdrant-tenancy"),
        '[store]\nengine = "qdrant-local"\nqdrant_placement = "partitioned"\n',
    )
    yield gateway
    gateway.proc.stop()


def _as(gateway: Secured, who: str, method: str, request):
    outcome = call(gateway, "grpc", method, request, gateway.creds.keys[who])
    assert outcome.code == grpc.StatusCode.OK, outcome
    return outcome.response


def _make(gateway: Secured, who: str, name: str) -> None:
    _as(
        gateway,
        who,
        "CreateCollection",
        pb.CreateCollectionRequest(
            collection=rpb.Collection(name=name, dimension=3, distance=rpb.DISTANCE_COSINE)
        ),
    )
    metadata = struct_pb2.Struct()
    metadata.update({"kind": "same"})
    vectors = [rpb.Vector(id=i, embedding=OWNER[who], metadata=metadata) for i in IDS[who]]
    _as(gateway, who, "UpsertVectors", pb.UpsertVectorsRequest(collection=name, vectors=vectors))


def _same() -> fpb.Filter:
    return fpb.Filter(
        must=[fpb.Condition(field=fpb.FieldCondition(key="kind", match=fpb.Match(keyword="same")))]
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_tenant_sees_only_its_own_points_in_a_shared_collection(partitioned, protocol):
    name = f"docs-{protocol}"
    for who in OWNER:
        _make(partitioned, who, name)
    for who in OWNER:
        key = partitioned.creds.keys[who]
        count = call(
            partitioned,
            protocol,
            "CountVectors",
            pb.CountVectorsRequest(collection=name, filter=_same()),
            key,
        )
        assert count.code == grpc.StatusCode.OK and count.response.count == len(IDS[who]), count
        search = call(
            partitioned,
            protocol,
            "SearchVectors",
            pb.SearchVectorsRequest(
                collection=name, query_vector=[1.0, 1.0, 0.0], limit=10, filter=_same(), with_embedding=True
            ),
            key,
        )
        assert sorted(h.id for h in search.response.results) == IDS[who], search
        assert all(list(h.embedding) == pytest.approx(OWNER[who]) for h in search.response.results)
        scroll = call(
            partitioned,
            protocol,
            "ScrollVectors",
            pb.ScrollVectorsRequest(collection=name, page_size=10),
            key,
        )
        assert sorted(v.id for v in scroll.response.vectors) == IDS[who], scroll
        got = call(partitioned, protocol, "GetVector", pb.GetVectorRequest(collection=name, id="c"), key)
        assert got.code == (grpc.StatusCode.OK if "c" in IDS[who] else grpc.StatusCode.NOT_FOUND), got

    # acme deletes by filter, then its collection: globex keeps every point it wrote.
    acme = partitioned.creds.keys["admin"]
    deleted = call(
        partitioned, protocol, "DeleteVectors", pb.DeleteVectorsRequest(collection=name, filter=_same()), acme
    )
    assert deleted.code == grpc.StatusCode.OK, deleted
    gone = call(partitioned, protocol, "DeleteCollection", pb.DeleteCollectionRequest(name=name), acme)
    assert gone.code == grpc.StatusCode.OK, gone
    globex = partitioned.creds.keys["other-tenant"]
    count = call(partitioned, protocol, "CountVectors", pb.CountVectorsRequest(collection=name), globex)
    assert count.response.count == len(IDS["other-tenant"]), count
    listed = call(partitioned, protocol, "ListCollections", pb.ListCollectionsRequest(), acme)
    assert name not in [c.name for c in listed.response.collections], listed
    _as(partitioned, "other-tenant", "DeleteCollection", pb.DeleteCollectionRequest(name=name))


def _reserved(key: str) -> fpb.Filter:
    return fpb.Filter(
        must=[fpb.Condition(field=fpb.FieldCondition(key=key, match=fpb.Match(keyword="globex")))]
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reserved_payload_keys_are_refused_in_every_filter_facet_and_group(partitioned, protocol):
    """Every point of a shared collection carries `_citadel.tenant` and `_citadel.partition`:
    a caller naming them (to read, count, group or delete another tenant's points) is refused
    INVALID_ARGUMENT naming the field, and the other tenant keeps all it had."""
    name = f"reserved-{protocol}"
    for who in OWNER:
        _make(partitioned, who, name)
    acme = partitioned.creds.keys["admin"]
    nearest = pb.NearestQuery(vector=[1.0, 0.0, 0.0])
    for key in ("_citadel.tenant", "_citadel.partition", '"_citadel".tenant'):
        requests = {
            "CountVectors": (pb.CountVectorsRequest(collection=name, filter=_reserved(key)), "filter"),
            "SearchVectors": (
                pb.SearchVectorsRequest(collection=name, query_vector=[1.0, 0, 0], filter=_reserved(key)),
                "filter",
            ),
            "ScrollVectors": (pb.ScrollVectorsRequest(collection=name, filter=_reserved(key)), "filter"),
            "DeleteVectors": (pb.DeleteVectorsRequest(collection=name, filter=_reserved(key)), "filter"),
            "QueryVectors": (
                pb.QueryVectorsRequest(collection=name, nearest=nearest, filter=_reserved(key)),
                "filter",
            ),
            "FacetVectors": (pb.FacetVectorsRequest(collection=name, key=key), "key"),
            "QueryVectors group_by": (
                pb.QueryVectorsRequest(collection=name, nearest=nearest, group_by=pb.GroupBy(key=key)),
                "group_by.key",
            ),
        }
        for method, (request, field) in requests.items():
            outcome = call(partitioned, protocol, method.split()[0], request, acme)
            assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (method, key, outcome)
            assert field in outcome.message and "reserved" in outcome.message, (method, outcome)
    globex = partitioned.creds.keys["other-tenant"]
    count = call(partitioned, protocol, "CountVectors", pb.CountVectorsRequest(collection=name), globex)
    assert count.response.count == len(IDS["other-tenant"]), count
    for who in OWNER:
        _as(partitioned, who, "DeleteCollection", pb.DeleteCollectionRequest(name=name))
