"""CreateCollection's `collection.layout` over every protocol (gRPC, REST, GraphQL over HTTP and
WebSocket) on the `secured` gateway (embedded engine): each bound refused INVALID_ARGUMENT
naming its field and nothing created; the cluster-only settings refused FAILED_PRECONDITION
naming the field (one process keeps one copy); values at the bounds accepted and shown back
by GetCollection and ListCollections, and a collection without a layout shows none. The same
round trip on qdrant-client's local mode, which takes the cluster settings as a server would.
"""

from __future__ import annotations

import itertools
import json

import grpc
import httpx
import pytest
from google.protobuf import json_format

from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.adapters.protocols import Protocols, _graphql_value, lower_camel, selection_set
from tests.security.conftest import Secured
from tests.security.protocol_calls import PROTOCOLS, SPECS, call
from tests.security.test_graphql import socket_session
from tests.support.gateway_process import GatewayProcess

EVERY_PROTOCOL = (*PROTOCOLS, "graphql-ws")
_names = itertools.count()

# (layout as proto3 JSON, the field the refusal names)
OUT_OF_BOUNDS = [
    ({"shardNumber": 0}, "collection.layout.shard_number"),
    ({"shardNumber": 257}, "collection.layout.shard_number"),
    ({"replicationFactor": 0}, "collection.layout.replication_factor"),
    ({"replicationFactor": 17}, "collection.layout.replication_factor"),
    ({"writeConsistencyFactor": 0}, "collection.layout.write_consistency_factor"),
    ({"replicationFactor": 2, "writeConsistencyFactor": 3}, "collection.layout.write_consistency_factor"),
    ({"hnsw": {"m": 3}}, "collection.layout.hnsw.m"),
    ({"hnsw": {"m": 129}}, "collection.layout.hnsw.m"),
    ({"hnsw": {"efConstruct": 3}}, "collection.layout.hnsw.ef_construct"),
    ({"hnsw": {"efConstruct": 1025}}, "collection.layout.hnsw.ef_construct"),
    ({"quantization": {"oversampling": 0.5}}, "collection.layout.quantization.oversampling"),
    ({"quantization": {"oversampling": 16.5}}, "collection.layout.quantization.oversampling"),
    (
        {"quantization": {"type": "QUANTIZATION_NONE", "oversampling": 2}},
        "collection.layout.quantization.oversampling",
    ),
]
CLUSTER_ONLY = [
    ({"shardNumber": 2}, "shard_number"),
    ({"replicationFactor": 2}, "replication_factor"),
    ({"writeConsistencyFactor": 1}, "write_consistency_factor"),
    ({"readConsistency": "READ_CONSISTENCY_MAJORITY"}, "read_consistency"),
]
# At the bounds, everything the embedded engine honours.
EMBEDDED_LOWEST = {
    "hnsw": {"m": 4, "efConstruct": 4},
    "quantization": {"type": "QUANTIZATION_INT8", "oversampling": 1},
}
EMBEDDED_HIGHEST = {
    "hnsw": {"m": 128, "efConstruct": 1024},
    "quantization": {"type": "QUANTIZATION_INT8", "oversampling": 16},
    "onDiskVectors": False,
}
EVERYTHING = {
    "shardNumber": 256,
    "replicationFactor": 16,
    "writeConsistencyFactor": 16,
    "readConsistency": "READ_CONSISTENCY_ALL",
    "hnsw": {"m": 16, "efConstruct": 100},
    "quantization": {"type": "QUANTIZATION_NONE"},
    "onDiskVectors": True,
}


def _request(layout: dict | None, name: str | None = None) -> pb.CreateCollectionRequest:
    collection = {"name": name or f"layout-{next(_names)}", "dimension": 3, "distance": "DISTANCE_COSINE"}
    if layout is not None:
        collection["layout"] = layout
    return json_format.ParseDict({"collection": collection}, pb.CreateCollectionRequest())


def _over_websocket(gateway: Secured, request, bearer: str):
    """CreateCollection as a graphql-transport-ws operation; (code name, message) or the reply."""
    spec = SPECS["CreateCollection"]
    root = {"authorization": f"Bearer {gateway.creds.keys['root']}"}
    with httpx.Client(base_url=gateway.proc.http_url, headers=root, timeout=60) as http:
        op, arg_types = Protocols(gateway.proc.channel(), http).root_fields()["createCollection"]
    values = _graphql_value(request.DESCRIPTOR, json_format.MessageToDict(request))
    document = (
        f"{op} Layout({', '.join(f'${k}: {arg_types[k]}' for k in values)}) "
        f"{{ createCollection({', '.join(f'{k}: ${k}' for k in values)}){selection_set(spec.descriptor.output_type)} }}"
    )
    with socket_session(gateway.proc, headers={"authorization": f"Bearer {bearer}"}) as ws:
        ws.send(
            json.dumps({"id": "c", "type": "subscribe", "payload": {"query": document, "variables": values}})
        )
        message = json.loads(ws.recv(timeout=30))
    assert message["type"] == "next", message
    payload = message["payload"]
    if payload.get("errors"):
        error = payload["errors"][0]
        return error["extensions"]["code"], error["message"]
    return "OK", payload["data"][lower_camel("CreateCollection")]


def _create(gateway: Secured, protocol: str, request) -> tuple[str, str]:
    """(status code name, message) of a CreateCollection as acme's admin."""
    bearer = gateway.creds.keys["admin"]
    if protocol == "graphql-ws":
        code, reply = _over_websocket(gateway, request, bearer)
        return code, reply if code != "OK" else ""
    outcome = call(gateway, protocol, "CreateCollection", request, bearer)
    return outcome.code.name, outcome.message


def _get(gateway: Secured, protocol: str, name: str) -> rpb.Collection:
    outcome = call(
        gateway, protocol, "GetCollection", pb.GetCollectionRequest(name=name), gateway.creds.keys["reader"]
    )
    assert outcome.code == grpc.StatusCode.OK, outcome
    return outcome.response.collection


def _listed(gateway: Secured, protocol: str) -> dict[str, rpb.Collection]:
    request = pb.ListCollectionsRequest(page_size=1000)
    outcome = call(gateway, protocol, "ListCollections", request, gateway.creds.keys["reader"])
    assert outcome.code == grpc.StatusCode.OK, outcome
    return {c.name: c for c in outcome.response.collections}


def _layout(values: dict) -> rpb.CollectionLayout:
    return json_format.ParseDict(values, rpb.CollectionLayout())


@pytest.mark.parametrize("protocol", EVERY_PROTOCOL)
@pytest.mark.parametrize(("layout", "field"), OUT_OF_BOUNDS, ids=[f for _, f in OUT_OF_BOUNDS])
def test_each_bound_is_refused_naming_its_field(secured, protocol, layout, field):
    request = _request(layout)
    code, message = _create(secured, protocol, request)
    assert code == "INVALID_ARGUMENT", (code, message)
    assert message.startswith(f"{field}: "), message
    assert request.collection.name not in _listed(secured, "grpc")  # nothing was created


@pytest.mark.parametrize("protocol", EVERY_PROTOCOL)
@pytest.mark.parametrize(("layout", "field"), CLUSTER_ONLY, ids=[f for _, f in CLUSTER_ONLY])
def test_cluster_settings_are_refused_by_the_embedded_engine(secured, protocol, layout, field):
    request = _request(layout)
    code, message = _create(secured, protocol, request)
    assert code == "FAILED_PRECONDITION", (code, message)
    assert message.startswith(f"collection.layout.{field}: the embedded engine"), message
    assert "store.qdrant_url" in message
    assert request.collection.name not in _listed(secured, "grpc")


@pytest.mark.parametrize("protocol", EVERY_PROTOCOL)
def test_layouts_at_the_bounds_round_trip(secured, protocol):
    made = {}
    for layout in (EMBEDDED_LOWEST, EMBEDDED_HIGHEST, None):
        request = _request(layout)
        assert _create(secured, protocol, request) == ("OK", "")
        made[request.collection.name] = _layout(layout or {})
    for reader in PROTOCOLS:
        listed = _listed(secured, reader)
        for name, layout in made.items():
            assert _get(secured, reader, name).layout == layout, (reader, name)
            assert listed[name].layout == layout, (reader, name)
    unset = next(n for n, layout in made.items() if layout == rpb.CollectionLayout())
    assert not _get(secured, "grpc", unset).HasField("layout")  # no layout: every default


def test_an_unknown_enum_value_is_refused_over_grpc(secured):
    # Only gRPC can carry a number the contract does not name (REST and GraphQL refuse it
    # while decoding).
    for layout, field in (
        (rpb.CollectionLayout(read_consistency=9), "collection.layout.read_consistency"),
        (
            rpb.CollectionLayout(quantization=rpb.QuantizationLayout(type=7)),
            "collection.layout.quantization.type",
        ),
    ):
        request = _request(None)
        request.collection.layout.CopyFrom(layout)
        code, message = _create(secured, "grpc", request)
        assert (code, message.split(":")[0]) == ("INVALID_ARGUMENT", field), message


@pytest.fixture(scope="module")
def qdrant_local(tmp_path_factory):
    proc = GatewayProcess(
        tmp_path_factory.mktemp("layout-qdrant-local") / "data", env={"CITADEL_ENGINE": "qdrant-local"}
    ).start()
    yield proc
    proc.stop()


def test_qdrant_local_keeps_every_setting_and_defaults_stay_unset(qdrant_local):
    with httpx.Client(base_url=qdrant_local.http_url, timeout=60) as http:
        protocols = Protocols(qdrant_local.channel(), http)
        create, get, list_ = SPECS["CreateCollection"], SPECS["GetCollection"], SPECS["ListCollections"]
        for protocol, (name, layout) in zip(
            PROTOCOLS,
            (("wide", EVERYTHING), ("narrow", {"replicationFactor": 1}), ("plain", None)),
            strict=True,
        ):
            outcome = getattr(protocols, protocol)(create, _request(layout, name))
            assert outcome.code == grpc.StatusCode.OK, outcome
            assert outcome.response.collection.layout == _layout(layout or {})
        for protocol in PROTOCOLS:
            listed = getattr(protocols, protocol)(list_, pb.ListCollectionsRequest()).response.collections
            for name, layout in (("wide", EVERYTHING), ("narrow", {"replicationFactor": 1}), ("plain", {})):
                got = getattr(protocols, protocol)(
                    get, pb.GetCollectionRequest(name=name)
                ).response.collection
                assert got.layout == _layout(layout), (protocol, name)
                assert next(c for c in listed if c.name == name).layout == _layout(layout), (protocol, name)
