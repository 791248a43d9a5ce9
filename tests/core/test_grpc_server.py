"""The grpc.aio server's own handling of requests and statuses, whatever the servicer does."""

from __future__ import annotations

import grpc
import pytest

from citadel.server.errors import MAX_MESSAGE_BYTES
from citadel.vector.v1 import vector_service_pb2 as pb

# A string field (field 1, length 1) holding a byte that is not UTF-8, and bytes that are no
# protobuf at all.
BAD_UTF8 = b"\x0a\x01\xff"
CORRUPT = b"\xff\xff\xff"


@pytest.mark.parametrize("payload", [BAD_UTF8, CORRUPT], ids=["bad-utf8", "corrupt"])
def test_undecodable_requests_are_invalid_argument_on_every_kind_of_rpc(gateway, payload):
    channel = gateway.channel()
    calls = {
        "unary": lambda: channel.unary_unary("/citadel.vector.v1.VectorService/GetCollection")(
            payload, timeout=10
        ),
        "server stream": lambda: list(
            channel.unary_stream("/citadel.batch.v1.BatchService/WatchBatchJob")(payload, timeout=10)
        ),
        "client stream": lambda: channel.stream_unary("/citadel.batch.v1.BatchService/UploadBatchJob")(
            iter([payload]), timeout=10
        ),
    }
    for kind, send in calls.items():
        with pytest.raises(grpc.RpcError) as e:
            send()
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (kind, e.value.details())
        assert e.value.details().startswith("request: not a valid citadel."), kind


@pytest.mark.parametrize("char", ["x", "é", "🦀"])
def test_a_status_echoing_a_huge_value_still_reaches_the_client(gateway, char):
    """The message names the field and the problem with the value cut short: the whole value
    in the grpc-message trailer went past the client's metadata limit, and the caller got
    RESOURCE_EXHAUSTED "Stream removed" instead of the status."""
    stub = gateway.stub()
    with pytest.raises(grpc.RpcError) as e:
        stub.GetCollection(pb.GetCollectionRequest(name=char * 100_000), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    details = e.value.details()
    assert details.startswith("name: '" + char * 10)
    assert details.endswith("starting with a letter or digit")
    assert "characters cut" in details
    assert len(details.encode()) <= MAX_MESSAGE_BYTES
