"""Cost follows identity: request bodies are read and decoded only after authentication, within
their limits, and no input (however large or deep) blocks the loop, leaks memory, answers 500
or writes a long log line.

Each hostile request is the issue's own: a 60 MB upsert of 1.6 M tiny vectors without
credentials, and a filter nested hundreds of levels deep, over gRPC, REST and GraphQL.
"""

from __future__ import annotations

import contextlib
import time

import grpc
import httpx
import orjson
import pytest

from citadel.server.servicers.validation import MAX_FILTER_DEPTH
from citadel.vector.v1 import filter_pb2, resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.security.conftest import Secured, start_secured

UPSERT = "/citadel.vector.v1.VectorService/UpsertVectors"
SEARCH = "/citadel.vector.v1.VectorService/SearchVectors"
UPLOAD = "/citadel.batch.v1.BatchService/UploadBatchJob"
HUGE_VECTORS = 1_600_000  # ~60 MB of JSON, ~26 MB of protobuf: under every default limit
RSS_SLACK = 100 * 1024 * 1024
FILTER_MESSAGE = f"filters nest at most {MAX_FILTER_DEPTH} levels deep"


def huge_upsert_json() -> bytes:
    item = b'{"id":"v","embedding":[0.5]},'
    return b'{"vectors":[' + item * (HUGE_VECTORS - 1) + b'{"id":"v","embedding":[0.5]}]}'


def huge_upsert_proto() -> bytes:
    one = pb.UpsertVectorsRequest(vectors=[resources_pb2.Vector(id="v", embedding=[0.5])]).SerializeToString()
    return pb.UpsertVectorsRequest(collection="films").SerializeToString() + one * HUGE_VECTORS


def raw_unary(secured: Secured, path: str):
    """A unary call that sends bytes as they are: the server, not the client, judges them."""
    return secured.proc.channel().unary_unary(path, request_serializer=None, response_deserializer=None)


def grpc_code(call, request: bytes, metadata=()) -> tuple[grpc.StatusCode, str]:
    try:
        call(request, metadata=metadata, timeout=60)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


def settle(watch, samples: int = 3) -> None:
    """Inside the watch: lets it take a few samples, for requests refused faster than a poll."""
    deadline = time.monotonic() + 10
    while len(watch.latencies) < samples and time.monotonic() < deadline:
        time.sleep(0.02)


def assert_loop_kept_serving(watch) -> None:
    assert watch.latencies, "no /healthz answer at all while the request ran"
    assert watch.failures == 0
    assert watch.median < 0.1, f"/healthz median {watch.median * 1000:.0f} ms"
    assert watch.worst < 1.0, f"/healthz worst {watch.worst * 1000:.0f} ms"


def settled_rss(secured: Secured) -> int:
    """RSS once the allocator has had a moment to give freed memory back."""
    time.sleep(0.5)
    return secured.rss_bytes()


def log_offset(secured: Secured) -> int:
    return secured.proc.log_path.stat().st_size


def longest_log_line(secured: Secured, offset: int) -> int:
    time.sleep(0.2)  # the access line is written on the loop's next turn
    with open(secured.proc.log_path, "rb") as f:
        f.seek(offset)
        return max((len(line) for line in f.read().splitlines()), default=0)


# -- a huge body without credentials ---------------------------------------------------------


def test_unauthenticated_huge_rest_upsert_is_refused_without_reading_it(secured, health_watch):
    body = huge_upsert_json()
    url = f"{secured.proc.http_url}/v1/collections/films/vectors:upsert"
    before = settled_rss(secured)
    with health_watch() as watch, httpx.Client(timeout=60) as http:
        for headers in ({}, {"authorization": "Bearer ck_nobody_secret"}, secured.headers("reader")):
            response = http.post(url, content=body, headers={"content-type": "application/json", **headers})
            expected = 403 if headers and "ck_nobody" not in headers["authorization"] else 401
            assert response.status_code == expected, response.text
            assert response.json()["code"] in (
                grpc.StatusCode.UNAUTHENTICATED.value[0],
                grpc.StatusCode.PERMISSION_DENIED.value[0],
            )
        settle(watch)
    assert_loop_kept_serving(watch)
    assert settled_rss(secured) - before < RSS_SLACK


def test_unauthenticated_garbage_is_401_not_400_so_nothing_was_decoded(secured):
    with httpx.Client(base_url=secured.proc.http_url, timeout=30) as http:
        response = http.post("/v1/collections/films/vectors:upsert", content=b"{not json")
        assert response.status_code == 401
        response = http.post("/v1/collections/films/vectors:upsert?bogus=1", content=b"{}")
        assert response.status_code == 401  # query parameters are request content too
        response = http.post(
            "/v1/collections/films/vectors:upsert", content=b"{not json", headers=secured.headers("writer")
        )
        assert response.status_code == 400


def test_unauthenticated_huge_grpc_upsert_is_refused_without_decoding_it(secured, health_watch):
    request = huge_upsert_proto()
    call = raw_unary(secured, UPSERT)
    before = settled_rss(secured)
    with health_watch() as watch:
        assert grpc_code(call, request)[0] == grpc.StatusCode.UNAUTHENTICATED
        assert grpc_code(call, request, secured.metadata("reader"))[0] == grpc.StatusCode.PERMISSION_DENIED
        settle(watch)
    assert_loop_kept_serving(watch)
    assert settled_rss(secured) - before < RSS_SLACK


def test_bytes_are_decoded_only_after_authentication_on_every_kind_of_rpc(secured):
    garbage = b"\xff\xff\xff"  # not any message
    assert grpc_code(raw_unary(secured, UPSERT), garbage)[0] == grpc.StatusCode.UNAUTHENTICATED
    code, message = grpc_code(raw_unary(secured, UPSERT), garbage, secured.metadata("writer"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "UpsertVectorsRequest" in message
    upload = secured.proc.channel().stream_unary(UPLOAD, request_serializer=None, response_deserializer=None)
    for metadata, expected in (
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (secured.metadata("writer"), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            upload(iter([garbage, garbage]), metadata=metadata, timeout=30)
        assert refused.value.code() == expected


def test_a_grpc_message_over_server_max_message_bytes_is_resource_exhausted(secured):
    # grpc core refuses it before any Python runs, in its own words, naming both sizes.
    too_big = b"\n\x05films" + b"\x12\x00" * (32 * 1024 * 1024 + 8)
    code, message = grpc_code(raw_unary(secured, UPSERT), too_big, secured.metadata("writer"))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(64 * 1024 * 1024) in message


def test_a_large_authenticated_upsert_is_decoded_while_the_loop_keeps_serving(secured, health_watch):
    """Big enough that decoding on the loop would stall it for seconds; over REST it is parsed
    in a thread, over gRPC in pieces in a thread."""
    name = f"bulk{time.monotonic_ns()}"
    writer = secured.headers("writer")
    with httpx.Client(base_url=secured.proc.http_url, timeout=120) as http:
        admin = secured.headers("admin")
        created = http.post(
            "/v1/collections",
            json={"name": name, "dimension": 4, "distance": "DISTANCE_COSINE"},
            headers=admin,
        )
        assert created.status_code == 200, created.text
        vectors = [{"id": f"v{i}", "embedding": [1, i % 7, 0.5, 0.25]} for i in range(40_000)]
        body = orjson.dumps({"vectors": vectors})
        with health_watch() as watch:
            response = http.post(f"/v1/collections/{name}/vectors:upsert", content=body, headers=writer)
            settle(watch)
        assert response.status_code == 200, response.text
        assert_loop_kept_serving(watch)
    request = pb.UpsertVectorsRequest(
        collection=name,
        vectors=[resources_pb2.Vector(id=f"g{i}", embedding=[1, i % 5, 0.5, 0.25]) for i in range(40_000)],
    )
    with health_watch() as watch:
        secured.proc.stub().UpsertVectors(request, metadata=secured.metadata("writer"), timeout=120)
        settle(watch)
    assert_loop_kept_serving(watch)
    count = secured.proc.stub().CountVectors(
        pb.CountVectorsRequest(collection=name), metadata=secured.metadata("writer"), timeout=30
    )
    assert count.count == 80_000


# -- a filter nested hundreds of levels deep -------------------------------------------------


def nested_filter_json(levels: int) -> str:
    """The filter as JSON text, written out: JSON libraries refuse to write it this deep."""
    inner = '{"must": [{"field": {"key": "year", "match": {"integer": 1}}}]}'
    return '{"must": [{"filter": ' * (levels - 1) + inner + "}]}" * (levels - 1)


def nested_filter_proto(levels: int) -> filter_pb2.Filter:
    top = filter_pb2.Filter()
    current = top
    for _ in range(levels - 1):
        current = current.must.add().filter
    current.must.add().field.key = "year"
    return top


@pytest.fixture(scope="module")
def films(secured) -> str:
    """A collection of acme's, so that requests get past the lookup to their filter."""
    request = pb.CreateCollectionRequest(
        collection=resources_pb2.Collection(name="films", dimension=4, distance=resources_pb2.DISTANCE_COSINE)
    )
    with contextlib.suppress(grpc.RpcError):  # already there from an earlier module
        secured.proc.stub().CreateCollection(request, metadata=secured.metadata("admin"), timeout=30)
    return "films"


def too_deep_path() -> str:
    return "filter" + ".must[0].filter" * (MAX_FILTER_DEPTH + 1)


@pytest.mark.parametrize("levels", [MAX_FILTER_DEPTH + 2, 40, 170, 340])
def test_a_deeply_nested_filter_is_400_with_the_validators_words_and_a_short_log(secured, films, levels):
    offset = log_offset(secured)
    body = '{"queryVector": [1, 0, 0, 0], "filter": ' + nested_filter_json(levels) + "}"
    url = f"{secured.proc.http_url}/v1/collections/films/vectors:search"
    assert httpx.post(url, content=body, timeout=30).status_code == 401  # not even parsed
    response = httpx.post(url, content=body, headers=secured.headers("reader"), timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == f"{too_deep_path()}: {FILTER_MESSAGE}"
    assert longest_log_line(secured, offset) < 4096


@pytest.mark.parametrize("levels", [MAX_FILTER_DEPTH + 2, 40])
def test_grpc_and_rest_refuse_a_deep_filter_in_the_same_words(secured, films, levels):
    request = pb.SearchVectorsRequest(collection="films", query_vector=[1, 0, 0, 0])
    request.filter.CopyFrom(nested_filter_proto(levels))
    code, message = grpc_code(
        raw_unary(secured, SEARCH), request.SerializeToString(), secured.metadata("reader")
    )
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT, f"{too_deep_path()}: {FILTER_MESSAGE}")


def test_grpc_refuses_a_filter_deeper_than_protobuf_parses_as_invalid_argument(secured, films):
    # 340 filters are 680 nested messages: past protobuf's own limit of 100, a parse error.
    request = pb.SearchVectorsRequest(collection="films", query_vector=[1, 0, 0, 0])
    request.filter.CopyFrom(nested_filter_proto(340))
    code, _ = grpc_code(raw_unary(secured, SEARCH), request.SerializeToString(), secured.metadata("reader"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("levels", [40, 340])
def test_graphql_refuses_a_deeply_nested_filter_without_a_500(secured, films, levels):
    offset = log_offset(secured)
    query = (
        'query S($f: FilterInput) { searchVectors(collection: "films", queryVector: [1, 0, 0, 0], '
        "filter: $f) { queryTimeMs } }"
    )
    payload = (
        '{"query": '
        + orjson.dumps(query).decode()
        + ', "variables": {"f": '
        + nested_filter_json(levels)
        + "}}"
    )
    url = f"{secured.proc.http_url}/graphql"
    json_type = {"content-type": "application/json"}
    assert httpx.post(url, content=payload, headers=json_type, timeout=30).status_code == 401
    response = httpx.post(
        url, content=payload, headers={**json_type, **secured.headers("reader")}, timeout=30
    )
    assert response.status_code < 500, response.text
    errors = response.json()["errors"]
    assert errors and all(e.get("extensions", {}).get("code") != "INTERNAL" for e in errors)
    assert longest_log_line(secured, offset) < 4096


# -- limits that need a gateway of their own -------------------------------------------------


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory):
    gateway = start_secured(
        tmp_path_factory.mktemp("small-limits"),
        "[limits]\nrest_body_bytes = 1000000\nrest_response_bytes = 200000\n",
    )
    yield gateway
    gateway.proc.stop()


def test_a_body_over_limits_rest_body_bytes_is_413_naming_the_setting(small_limits):
    url = f"{small_limits.proc.http_url}/v1/collections/films/vectors:upsert"
    body = b'{"vectors": [' + b'{"id": "v", "embedding": [1]},' * 40_000 + b"]}"
    expected = "request body is larger than limits.rest_body_bytes (1000000 bytes)"

    def chunks():  # no Content-Length: the limit applies while reading
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    for content in (body, chunks()):
        response = httpx.post(url, content=content, headers=small_limits.headers("writer"), timeout=30)
        assert response.status_code == 413
        assert response.json()["message"] == expected
        assert response.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def test_a_reply_over_limits_rest_response_bytes_says_to_page(small_limits):
    writer = small_limits.headers("writer")
    with httpx.Client(base_url=small_limits.proc.http_url, timeout=60) as http:
        assert http.post(
            "/v1/collections",
            json={"name": "wide", "dimension": 1024, "distance": "DISTANCE_DOT"},
            headers=small_limits.headers("admin"),
        ).is_success
        for start in (0, 50):
            vectors = [
                {"id": f"w{i}", "embedding": [0.001 * (i + 1)] * 1024} for i in range(start, start + 50)
            ]
            assert http.post(
                "/v1/collections/wide/vectors:upsert", json={"vectors": vectors}, headers=writer
            ).is_success
        search = {"queryVector": [1.0] * 1024, "limit": 100}
        # 100 hits × 1024 floats: 400 KB as protobuf, refused before any JSON is written.
        # 40 hits: 160 KB as protobuf, but more than 200 KB of JSON once written.
        for limit in (100, 40):
            response = http.post(
                "/v1/collections/wide/vectors:search",
                json={**search, "limit": limit, "withEmbedding": True},
                headers=writer,
            )
            assert response.status_code == 429, response.text
            status = response.json()
            assert status["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
            assert status["message"].startswith(
                "response is larger than limits.rest_response_bytes (200000 bytes)"
            )
            assert "page" in status["message"]
        fine = http.post("/v1/collections/wide/vectors:search", json=search, headers=writer)
        assert fine.status_code == 200 and len(fine.json()["results"]) == 100
