"""OpenTelemetry tracing end to end: a real gateway exporting OTLP/HTTP to a collector of ours,
with Redis (cache, rate limits, job queue) and an HTTP model backend. A REST and a GraphQL
search by text each make one trace: HTTP server span → call span → rate limit and cache in
Redis, the model backend call, the store search, all parent-linked. Without tracing settings
nothing is exported; without the extra installed the gateway still serves, and asking for
tracing then fails start-up naming the extra."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from websockets.sync.client import connect

from citadel.batch.v1 import batch_service_pb2 as batch
from citadel.batch.v1 import batch_service_pb2_grpc
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.conftest import require_binary
from tests.models.conftest import backend, toml_value
from tests.support.gateway_process import GatewayProcess
from tests.support.model_server import ModelServer
from tests.support.redis_server import RedisServer
from tests.tracing.collector import Collector, Span

MODEL = "traced"
LOCAL = "inproc"  # the local model, in the gateway's process
SEARCH = "/citadel.vector.v1.VectorService/SearchVectors"
# Export every 50 ms instead of every 5 s, so spans arrive while the test waits.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50", "CITADEL_ACCESS_LOG": "false"}
TEXTS = {
    "river": "A river carries water from the hills to the sea.",
    "compiler": "A compiler translates source code into machine instructions.",
    "bread": "Bread dough rises because yeast produces carbon dioxide.",
}


def write_toml(path: Path, sections: dict[str, dict]) -> Path:
    lines = []
    for section, table in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in table.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def collector():
    c = Collector().start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def traced(tmp_path_factory, collector):
    """A gateway with tracing on, Redis and one HTTP model backend; a collection of three texts."""
    workdir = tmp_path_factory.mktemp("traced")
    redis = RedisServer(require_binary("redis-server", "apt-get install -y redis-server"), workdir / "redis")
    model = ModelServer(workdir / "model", "traced-backend")
    gateway = None
    try:
        redis.start()
        model.start()
        config = write_toml(
            workdir / "citadel.toml",
            {
                "redis": {"url": redis.url},
                "tracing": {
                    "enabled": True,
                    "exporter": "otlp",
                    "endpoint": collector.endpoint,
                    "service_name": "citadel-under-test",
                },
                "rate_limits.buckets": {"role:anonymous": {"rate": 1000, "burst": 1000}},
                "models": {"default": MODEL},
                f"models.catalog.{MODEL}": {"backends": [backend(model)]},
                f"models.catalog.{LOCAL}": {"backends": [{"id": "in-process", "provider": "local"}]},
            },
        )
        gateway = GatewayProcess(
            workdir / "data", env=FAST_EXPORT, args=["--insecure-no-auth", "--config", str(config)]
        ).start()
        stub = gateway.stub()
        name = f"traced_{uuid.uuid4().hex[:8]}"
        vectors = stub.GenerateEmbedding(
            pb.GenerateEmbeddingRequest(texts=list(TEXTS.values()), model=MODEL), timeout=30
        ).embeddings
        stub.CreateCollection(
            pb.CreateCollectionRequest(
                collection=resources_pb2.Collection(
                    name=name, dimension=384, distance=resources_pb2.DISTANCE_COSINE
                )
            ),
            timeout=30,
        )
        stub.UpsertVectors(
            pb.UpsertVectorsRequest(
                collection=name,
                vectors=[
                    resources_pb2.Vector(id=k, embedding=v.values)
                    for k, v in zip(TEXTS, vectors, strict=True)
                ],
            ),
            timeout=30,
        )
        yield gateway, model, name
    finally:
        if gateway is not None:
            gateway.stop()
        model.close()
        redis.kill()


def by_request_id(spans: list[Span], request_id: str) -> Span | None:
    return next((s for s in spans if s.attributes.get("citadel.request_id") == request_id), None)


def descends_from(span: Span, ancestor: Span, spans: list[Span]) -> bool:
    by_id = {s.span_id: s for s in spans}
    while span.parent_id:
        if span.parent_id == ancestor.span_id:
            return True
        span = by_id.get(span.parent_id)
        if span is None:
            return False
    return False


def one_search_trace(collector: Collector, request_id: str) -> tuple[Span, list[Span]]:
    """The call span with that request id and its whole trace, once the last span arrived."""

    def complete(spans: list[Span]) -> bool:
        call = by_request_id(spans, request_id)
        if call is None:
            return False
        names = {s.name for s in spans if s.trace_id == call.trace_id}
        return {"cache.store", "store.search", "model.embed"} <= names and any(
            s.kind == "server" and s.trace_id == call.trace_id for s in spans
        )

    spans = collector.wait_for(complete)
    call = by_request_id(spans, request_id)
    return call, [s for s in spans if s.trace_id == call.trace_id]


def check_search_trace(
    call: Span, spans: list[Span], protocol: str, collection: str, model: ModelServer
) -> Span:
    """Asserts one parent-linked trace through every layer; returns its HTTP server span."""
    ids = {s.span_id for s in spans}
    http = next(s for s in spans if s.span_id == call.parent_id)
    assert http.kind == "server"
    assert http.attributes["http.request.method"] == "POST"
    assert http.attributes["http.response.status_code"] == 200
    assert http.resource["service.name"] == "citadel-under-test"

    assert call.name == SEARCH and call.kind == "internal"
    assert call.attributes["rpc.system"] == "grpc"
    assert call.attributes["rpc.service"] == "citadel.vector.v1.VectorService"
    assert call.attributes["rpc.method"] == "SearchVectors"
    assert call.attributes["citadel.protocol"] == protocol
    assert call.attributes["rpc.grpc.status_code"] == 0
    assert call.attributes["enduser.id"] == "anonymous"

    def only(name: str) -> Span:
        found = [s for s in spans if s.name == name]
        assert len(found) == 1, f"{name}: {len(found)} spans in the trace: {[s.name for s in spans]}"
        assert descends_from(found[0], call, spans), f"{name} is not under the call span"
        return found[0]

    take = only("ratelimit.take")
    assert take.kind == "client" and take.attributes["db.system.name"] == "redis"
    assert take.attributes["citadel.ratelimit.allowed"] is True
    lookup = only("cache.lookup")
    assert lookup.attributes["db.system.name"] == "redis" and lookup.attributes["citadel.cache.hits"] == 0
    assert lookup.attributes["server.address"] == "127.0.0.1"
    stored = only("cache.store")
    assert stored.attributes["db.system.name"] == "redis" and stored.attributes["citadel.cache.entries"] == 1
    embed = only("model.embed")
    assert embed.kind == "client"
    assert embed.attributes["citadel.model"] == MODEL
    assert embed.attributes["citadel.model.backend"] == model.name
    assert embed.attributes["server.port"] == model.port
    assert embed.attributes["citadel.model.dimensions"] == 384
    search = only("store.search")
    assert search.attributes["db.collection.name"] == collection
    assert search.attributes["db.system.name"] in ("qdrant", "qdrant-edge")
    assert search.kind == "internal"  # the embedded engine runs in the gateway's process
    assert search.attributes["citadel.store.results"] == 2
    # Every span's parent is in the trace, except the root's.
    roots = [s for s in spans if s.parent_id not in ids]
    assert len(roots) == 1, [(s.name, s.parent_id) for s in roots]
    return http


def test_rest_search_is_one_trace_continuing_the_callers(traced, collector):
    gateway, model, name = traced
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    request_id = f"rest-{uuid.uuid4().hex[:8]}"
    reply = httpx.post(
        f"{gateway.http_url}/v1/collections/{name}/vectors:search",
        json={"queryText": "how do programs get built?", "model": MODEL, "limit": 2},
        headers={"traceparent": f"00-{caller_trace}-{caller_span}-01", "x-request-id": request_id},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"][0]["id"] == "compiler"

    call, spans = one_search_trace(collector, request_id)
    assert call.trace_id == caller_trace  # the caller's trace goes on
    http = check_search_trace(call, spans, "rest", name, model)
    assert http.parent_id == caller_span
    assert http.name == f"POST {SEARCH}"
    # The model backend was asked with the trace's context, naming the model.embed span.
    embed = next(s for s in spans if s.name == "model.embed")
    sent = [t for t in model.stats()["traceparents"] if t.startswith(f"00-{caller_trace}-")]
    assert len(sent) == 1 and sent[0].split("-")[2] == embed.span_id, sent


def test_graphql_search_is_one_trace(traced, collector):
    gateway, model, name = traced
    request_id = f"graphql-{uuid.uuid4().hex[:8]}"
    query = (
        "query Find($c: String, $t: String) { searchVectors(collection: $c, queryText: $t, "
        'model: "traced", limit: 2) { results { id score } } }'
    )
    reply = httpx.post(
        f"{gateway.http_url}/graphql",
        json={"query": query, "variables": {"c": name, "t": "yeast and flour"}},
        headers={"x-request-id": request_id},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"]["searchVectors"]["results"][0]["id"] == "bread"

    call, spans = one_search_trace(collector, request_id)
    http = check_search_trace(call, spans, "graphql", name, model)
    assert http.parent_id == ""  # no traceparent sent: the gateway started the trace
    assert http.name == "POST /graphql" and http.attributes["http.route"] == "/graphql"


def test_grpc_call_is_a_server_span_continuing_metadata_traceparent(traced, collector):
    gateway, _, name = traced
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    request_id = f"grpc-{uuid.uuid4().hex[:8]}"
    stub = gateway.stub()
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetCollection(
            pb.GetCollectionRequest(name=f"{name}_absent"),
            metadata=(("traceparent", f"00-{caller_trace}-{caller_span}-01"), ("x-request-id", request_id)),
            timeout=30,
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    spans = collector.wait_for(lambda spans: by_request_id(spans, request_id) is not None)
    call = by_request_id(spans, request_id)
    assert call.name == "/citadel.vector.v1.VectorService/GetCollection"
    assert call.kind == "server" and call.attributes["citadel.protocol"] == "grpc"
    assert call.trace_id == caller_trace and call.parent_id == caller_span
    assert call.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert call.status_code == 0  # the caller's mistake, not a server error
    # The access log line (failures are logged even with the access log off) names the trace.
    logged = [json.loads(line) for line in gateway.log().splitlines() if request_id in line]
    assert [entry.get("trace_id") for entry in logged if entry.get("msg") == "call"] == [caller_trace]


def test_local_model_embedding_is_a_span(traced, collector):
    gateway, _, _ = traced
    request_id = f"local-{uuid.uuid4().hex[:8]}"
    reply = gateway.stub().GenerateEmbedding(
        pb.GenerateEmbeddingRequest(text="embedded in process", model=LOCAL),
        metadata=(("x-request-id", request_id),),
        timeout=30,
    )
    assert len(reply.embedding) == 384

    def embedded(spans: list[Span]) -> bool:
        call = by_request_id(spans, request_id)
        return call is not None and any(
            s.name == "model.embed" and s.trace_id == call.trace_id for s in spans
        )

    spans = collector.wait_for(embedded)
    call = by_request_id(spans, request_id)
    assert call.kind == "server" and call.parent_id == ""  # no traceparent: a new trace
    embed = next(s for s in collector.trace(call.trace_id) if s.name == "model.embed")
    assert embed.kind == "internal" and descends_from(embed, call, collector.trace(call.trace_id))
    assert embed.attributes["citadel.model.provider"] == "local"
    assert embed.attributes["citadel.model"] == LOCAL and "server.address" not in embed.attributes


def test_stream_span_lasts_until_the_stream_ends(traced, collector):
    gateway, model, name = traced
    jobs = batch_service_pb2_grpc.BatchServiceStub(gateway.channel())
    submit_id, watch_id = f"submit-{uuid.uuid4().hex[:8]}", f"watch-{uuid.uuid4().hex[:8]}"
    model.control(delay_ms=600)  # the job takes a while, so the watch waits for its changes
    try:
        job = jobs.SubmitBatchJob(
            batch.SubmitBatchJobRequest(
                collection=name,
                operation=batch.OPERATION_BULK_EMBED_UPSERT,
                model=MODEL,
                items=[batch.BatchItem(id="slow", text="Kneading develops gluten in the dough.")],
            ),
            metadata=(("x-request-id", submit_id),),
            timeout=30,
        ).job
        with httpx.stream(
            "GET",
            f"{gateway.http_url}/v1/jobs/{job.id}:watch",
            headers={"x-request-id": watch_id},
            timeout=60,
        ) as watched:
            assert watched.status_code == 200
            lines = [json.loads(line) for line in watched.iter_lines() if line]
    finally:
        model.control(delay_ms=0)
    assert lines[-1]["status"]["code"] == 0
    assert lines[-2]["result"]["job"]["state"] == "JOB_STATE_SUCCEEDED"

    spans = collector.wait_for(lambda spans: by_request_id(spans, watch_id) is not None)
    watch = by_request_id(spans, watch_id)
    assert watch.name == "/citadel.batch.v1.BatchService/WatchBatchJob"
    assert watch.attributes["rpc.grpc.status_code"] == 0
    trace = collector.trace(watch.trace_id)
    gets = [s for s in trace if s.name in ("jobs.get", "jobs.next_change")]
    # One read before the stream starts, and the waits for changes while it ran, all under the call.
    assert [s.name for s in gets].count("jobs.next_change") >= 1, [s.name for s in trace]
    assert all(s.parent_id == watch.span_id for s in gets), [s.name for s in trace]
    assert all(s.attributes["citadel.job.id"] == job.id for s in gets)
    http = next(s for s in trace if s.span_id == watch.parent_id)
    assert http.name == "GET /citadel.batch.v1.BatchService/WatchBatchJob"

    submitted = collector.wait_for(lambda spans: by_request_id(spans, submit_id) is not None)
    call = by_request_id(submitted, submit_id)
    queued = [s for s in collector.trace(call.trace_id) if s.name == "jobs.submit"]
    assert len(queued) == 1 and queued[0].parent_id == call.span_id
    assert (
        queued[0].attributes["db.system.name"] == "redis" and queued[0].attributes["citadel.job.id"] == job.id
    )


def test_graphql_subscription_over_websocket_continues_the_connections_trace(traced, collector):
    gateway, _, name = traced
    jobs = batch_service_pb2_grpc.BatchServiceStub(gateway.channel())
    job = jobs.SubmitBatchJob(
        batch.SubmitBatchJobRequest(
            collection=name,
            operation=batch.OPERATION_BULK_UPSERT,
            items=[batch.BatchItem(id="ws", embedding=[0.0] * 383 + [1.0])],
        ),
        timeout=30,
    ).job
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    request_id = f"ws-{uuid.uuid4().hex[:8]}"
    headers = {"traceparent": f"00-{caller_trace}-{caller_span}-01", "x-request-id": request_id}
    url = f"ws://127.0.0.1:{gateway.http_port}/graphql"
    with connect(
        url, subprotocols=["graphql-transport-ws"], additional_headers=headers, open_timeout=10
    ) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "connection_ack"}
        query = "subscription W($id: String) { watchBatchJob(id: $id) { job { state } } }"
        ws.send(
            json.dumps(
                {"id": "w", "type": "subscribe", "payload": {"query": query, "variables": {"id": job.id}}}
            )
        )
        messages = []
        while not messages or messages[-1]["type"] not in ("complete", "error"):
            messages.append(json.loads(ws.recv(timeout=30)))
    assert messages[-1]["type"] == "complete", messages
    assert messages[-2]["payload"]["data"]["watchBatchJob"]["job"]["state"] == "JOB_STATE_SUCCEEDED"

    spans = collector.wait_for(lambda spans: by_request_id(spans, request_id) is not None)
    call = by_request_id(spans, request_id)
    # No HTTP span for a long-lived socket: the call is the server span, under the caller's.
    assert call.name == "/citadel.batch.v1.BatchService/WatchBatchJob" and call.kind == "server"
    assert call.attributes["citadel.protocol"] == "graphql"
    assert call.trace_id == caller_trace and call.parent_id == caller_span
    gets = [s for s in collector.trace(caller_trace) if s.name == "jobs.get"]
    assert gets and all(s.parent_id == call.span_id for s in gets)


def test_work_outside_calls_makes_no_traces(traced, collector):
    """Health probes, the job workers and queue polling run outside any call: every trace the
    gateway started begins with a server span."""
    roots = [s for s in collector.snapshot() if s.parent_id == ""]
    assert roots and all(s.kind == "server" for s in roots), sorted({(s.name, s.kind) for s in roots})


def test_probes_and_metrics_make_no_spans(traced, collector):
    gateway, _, _ = traced
    before = {s.span_id for s in collector.snapshot()}
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(gateway.http_url + path, timeout=10).status_code == 200
    request_id = f"marker-{uuid.uuid4().hex[:8]}"
    assert (
        httpx.get(
            f"{gateway.http_url}/v1/collections", headers={"x-request-id": request_id}, timeout=10
        ).status_code
        == 200
    )
    # Spans are exported in order of ending: once the marker's call is in, the probes' would be.
    spans = collector.wait_for(lambda spans: by_request_id(spans, request_id) is not None)
    new = [s for s in spans if s.span_id not in before]
    assert not [s for s in new if s.attributes.get("url.path") in ("/healthz", "/readyz", "/metrics")]


def test_without_tracing_settings_nothing_is_exported(tmp_path):
    own = Collector().start()
    try:
        # The standard OpenTelemetry variables alone do not switch tracing on.
        env = {**FAST_EXPORT, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": own.endpoint}
        gateway = GatewayProcess(tmp_path / "data", env=env).start()
        try:
            gateway.stub().ListCollections(pb.ListCollectionsRequest(), timeout=30)
            reply = httpx.post(f"{gateway.http_url}/v1/embeddings", json={"text": "plain"}, timeout=30)
            assert reply.status_code == 200, reply.text
        finally:
            assert gateway.stop() == 0  # a traced gateway would flush its spans on the way out
        assert own.requests == 0 and own.snapshot() == []
    finally:
        own.stop()


def test_a_dead_collector_neither_fails_calls_nor_holds_up_shutdown(tmp_path):
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **FAST_EXPORT,
        "CITADEL_TRACING_ENABLED": "true",
        "CITADEL_TRACING_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces",
    }
    gateway = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        for _ in range(3):
            assert httpx.get(f"{gateway.http_url}/v1/collections", timeout=30).status_code == 200
    finally:
        # The exporter would retry for 10 s per batch; shutdown gives it 3 s, then drops the rest.
        assert gateway.stop(timeout=9) == 0
    assert "spans not exported within 3 s; dropping the rest" in gateway.log()


@pytest.fixture
def without_extra(tmp_path) -> dict[str, str]:
    """Environment in which `import opentelemetry` fails, as when the extra is not installed."""
    shim = tmp_path / "no-otel" / "opentelemetry"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("opentelemetry is not installed (test shim)")\n')
    env = {"PYTHONPATH": str(shim.parent)}
    blocked = subprocess.run(
        [sys.executable, "-c", "import opentelemetry.trace"], env={**os.environ, **env}, capture_output=True
    )
    assert blocked.returncode != 0  # the shim really hides OpenTelemetry
    return env


def test_gateway_serves_without_the_extra(tmp_path, without_extra):
    gateway = GatewayProcess(tmp_path / "data", env={**FAST_EXPORT, **without_extra}).start()
    try:
        reply = httpx.post(
            f"{gateway.http_url}/v1/collections",
            json={"name": "plain", "dimension": 3, "distance": "DISTANCE_COSINE"},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        assert (
            httpx.get(f"{gateway.http_url}/v1/collections", timeout=30).json()["collections"][0]["name"]
            == "plain"
        )
    finally:
        assert gateway.stop() == 0


def test_tracing_without_the_extra_fails_start_up_naming_it(tmp_path, without_extra):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "citadel.server.cli",
            "serve",
            "--insecure-no-auth",
            "--data-dir",
            str(tmp_path),
        ]
        + ["--grpc-port", "0", "--http-port", "0"],
        env={**os.environ, **without_extra, "CITADEL_TRACING_ENABLED": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "tracing.enabled: OpenTelemetry is not installed" in done.stderr
    assert "pip install 'citadel-gateway[tracing]'" in done.stderr
