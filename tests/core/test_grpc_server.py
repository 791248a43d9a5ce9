"""The grpc.aio server's own handling of requests, before any servicer sees them."""

from __future__ import annotations

import grpc
import pytest

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
