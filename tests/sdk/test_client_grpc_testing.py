"""The sync SDK client (citadel.client) against grpc_testing's in-memory channel: no sockets, no
gateway, the test plays the server. What the SDK puts on the wire (each betterproto2 request
parsed by the server's own protobuf classes), the metadata and call options every call carries,
responses read back into the SDK's dataclasses, and each status mapped to its exception.

grpc_testing's channel cannot be wrapped by grpc.intercept_channel as it is (its multicallables
take no `wait_for_ready` / `compression`, which the interceptor machinery always passes), and it
ignores serializers and timeouts. `InMemoryChannel` closes that gap and nothing more: it
serializes with the stub's functions, hands bytes to grpc_testing, and records the call options
grpcio would have been given."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import grpc
import grpc_testing
import pytest
from google.protobuf import timestamp_pb2

from citadel.admin.v1 import admin_service_pb2
from citadel.batch.v1 import batch_service_pb2
from citadel.client import (
    AlreadyExists,
    Cancelled,
    CitadelError,
    Client,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    admin,
    batch,
    protobuf,
    vector,
)
from citadel.vector.v1 import resources_pb2, vector_service_pb2

VECTOR = vector_service_pb2.DESCRIPTOR.services_by_name["VectorService"]
BATCH = batch_service_pb2.DESCRIPTOR.services_by_name["BatchService"]
ADMIN = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
# grpc_testing adds this entry to every call's metadata ("gRPC is allowed to add metadata").
RUNTIME_KEY = "grpc.metadata_added_by_runtime"
WAIT = 5.0  # seconds: only a bound on a broken test, never reached when it passes


@dataclass(frozen=True)
class Options:
    method: str
    timeout: float | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class InMemoryChannel(grpc.Channel):
    """grpc_testing's channel as grpcio's own behaves under intercept_channel (see above)."""

    def __init__(self) -> None:
        self.testing = grpc_testing.channel([VECTOR, BATCH, ADMIN], grpc_testing.strict_real_time())
        self.options: list[Options] = []

    def _record(self, method: str, timeout, wait_for_ready, compression) -> None:
        self.options.append(Options(method, timeout, wait_for_ready, compression))

    def unary_unary(
        self, method, request_serializer=None, response_deserializer=None, _registered_method=False
    ):
        inner = self.testing.unary_unary(method)
        channel = self

        class UnaryUnary(grpc.UnaryUnaryMultiCallable):
            def with_call(
                self,
                request,
                timeout=None,
                metadata=None,
                credentials=None,
                wait_for_ready=None,
                compression=None,
            ):
                channel._record(method, timeout, wait_for_ready, compression)
                response, call = inner.with_call(request_serializer(request), timeout, metadata, credentials)
                return response_deserializer(response), call

            def __call__(self, request, **kwargs):
                return self.with_call(request, **kwargs)[0]

            def future(self, request, **kwargs):
                raise AssertionError("the SDK calls with_call, never future")

        return UnaryUnary()

    def stream_unary(
        self, method, request_serializer=None, response_deserializer=None, _registered_method=False
    ):
        inner = self.testing.stream_unary(method)
        channel = self

        class StreamUnary(grpc.StreamUnaryMultiCallable):
            def with_call(
                self,
                request_iterator,
                timeout=None,
                metadata=None,
                credentials=None,
                wait_for_ready=None,
                compression=None,
            ):
                channel._record(method, timeout, wait_for_ready, compression)
                serialized = (request_serializer(r) for r in request_iterator)
                response, call = inner.with_call(serialized, timeout, metadata, credentials)
                return response_deserializer(response), call

            def __call__(self, request_iterator, **kwargs):
                return self.with_call(request_iterator, **kwargs)[0]

            def future(self, request_iterator, **kwargs):
                raise AssertionError("the SDK calls with_call, never future")

        return StreamUnary()

    def unary_stream(
        self, method, request_serializer=None, response_deserializer=None, _registered_method=False
    ):
        inner = self.testing.unary_stream(method)
        channel = self

        class UnaryStream(grpc.UnaryStreamMultiCallable):
            def __call__(
                self,
                request,
                timeout=None,
                metadata=None,
                credentials=None,
                wait_for_ready=None,
                compression=None,
            ):
                channel._record(method, timeout, wait_for_ready, compression)
                return Responses(
                    inner(request_serializer(request), timeout, metadata, credentials), response_deserializer
                )

        return UnaryStream()

    def stream_stream(
        self, method, request_serializer=None, response_deserializer=None, _registered_method=False
    ):
        raise AssertionError("no Citadel RPC streams both ways: the SDK never asks for one")

    def subscribe(self, callback, try_to_connect=False):
        raise AssertionError("the SDK never watches connectivity")

    def unsubscribe(self, callback):
        raise AssertionError("the SDK never watches connectivity")

    def close(self):
        self.testing.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


class Responses:
    """A server stream's responses, deserialized; cancel() reaches the in-memory call."""

    def __init__(self, call, deserialize: Callable[[bytes], Any]) -> None:
        self._call = call
        self._deserialize = deserialize

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return self._deserialize(next(self._call))

    def cancel(self) -> bool:
        self._call.cancel()
        return True


@pytest.fixture
def channel() -> Iterator[InMemoryChannel]:
    with InMemoryChannel() as c:
        yield c


class Background:
    """Runs the client's side of a call on a daemon thread (the test's thread plays the server),
    so a test that fails with a call still waiting does not hang the run."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as e:
                future.set_exception(e)

        threading.Thread(target=run, daemon=True).start()
        return future


@pytest.fixture
def pool() -> Background:
    return Background()


def metadata_of(invocation_metadata) -> dict[str, str]:
    return {k: v for k, v in invocation_metadata if k != RUNTIME_KEY}


def answer_unary(
    channel: InMemoryChannel,
    method,
    response=None,
    code=grpc.StatusCode.OK,
    details: str = "",
    trailing=(),
):
    """Plays the server for one unary call: returns (metadata, request bytes) and answers it."""
    metadata, request, rpc = channel.testing.take_unary_unary(method)
    body = response.SerializeToString() if response is not None else b""
    rpc.terminate(body, tuple(trailing), code, details)
    return metadata_of(metadata), request


# --- what goes on the wire --------------------------------------------------------------------


def test_a_unary_request_is_what_the_servers_protobuf_classes_read(channel, pool):
    client = Client.from_channel(channel, api_key="k-123", timeout=7.5, metadata=[("x-team", "search")])
    request = vector.SearchVectorsRequest(
        collection="films",
        query_vector=[0.5, -1.0, 0.25],
        limit=3,
        score_threshold=0.0,  # optional: sent even at its default
        filter=vector.Filter(
            must=[vector.Condition(field=vector.FieldCondition(key="year", range=vector.Range(lt=1900.0)))]
        ),
    )
    future = pool.submit(client.vector.search_vectors, request)
    reply = vector_service_pb2.SearchVectorsResponse()
    hit = reply.results.add(id="dune", score=0.875)
    hit.metadata.update({"year": 1965, "genre": "scifi"})
    metadata, sent = answer_unary(channel, VECTOR.methods_by_name["SearchVectors"], reply)

    parsed = vector_service_pb2.SearchVectorsRequest.FromString(sent)
    assert parsed.collection == "films" and list(parsed.query_vector) == [0.5, -1.0, 0.25]
    assert parsed.limit == 3 and parsed.HasField("score_threshold") and parsed.score_threshold == 0.0
    assert parsed.filter.must[0].field.key == "year" and parsed.filter.must[0].field.range.lt == 1900.0
    assert metadata == {"authorization": "Bearer k-123", "x-team": "search"}

    result = future.result(WAIT)
    assert isinstance(result, vector.SearchVectorsResponse)
    assert result.results[0].id == "dune" and result.results[0].score == 0.875
    assert result.results[0].metadata.to_dict() == {"year": 1965.0, "genre": "scifi"}
    assert channel.options == [Options("/citadel.vector.v1.VectorService/SearchVectors", 7.5, None, None)]


def test_responses_become_typed_dataclasses(channel, pool):
    client = Client.from_channel(channel)
    future = pool.submit(client.vector.get_collection, vector.GetCollectionRequest(name="films"))
    created = timestamp_pb2.Timestamp()
    created.FromJsonString("2024-01-02T03:04:05.250Z")
    reply = vector_service_pb2.GetCollectionResponse(
        collection=resources_pb2.Collection(
            name="films",
            dimension=384,
            distance=resources_pb2.DISTANCE_DOT,
            vector_count=2**40,
            created_at=created,
        )
    )
    metadata, sent = answer_unary(channel, VECTOR.methods_by_name["GetCollection"], reply)
    assert vector_service_pb2.GetCollectionRequest.FromString(sent).name == "films"
    assert metadata == {}  # no key, no metadata
    got = future.result(WAIT).collection
    assert got.distance is vector.Distance.DOT and got.vector_count == 2**40 and got.dimension == 384
    assert got.created_at == datetime.datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=datetime.UTC)
    assert channel.options[0].timeout is None  # no timeout set: no deadline


def test_a_request_with_no_arguments_is_an_empty_message(channel, pool):
    future = pool.submit(Client.from_channel(channel, api_key="a").admin.get_service_status)
    reply = admin_service_pb2.GetServiceStatusResponse(ready=True, worker=1, workers=2)
    metadata, sent = answer_unary(channel, ADMIN.methods_by_name["GetServiceStatus"], reply)
    assert sent == b"" and metadata == {"authorization": "Bearer a"}
    status = future.result(WAIT)
    assert isinstance(status, admin.GetServiceStatusResponse) and status.ready and status.workers == 2


# --- call options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "metadata", "timeout", "wait_for_ready"),
    [
        (lambda ch: Client.from_channel(ch), {}, None, None),
        (lambda ch: Client.from_channel(ch, api_key="k", timeout=3), {"authorization": "Bearer k"}, 3, None),
        (lambda ch: Client.from_channel(ch, api_key="", timeout=0.25), {}, 0.25, None),  # empty key: none
        (lambda ch: Client.from_channel(ch, wait_for_ready=True), {}, None, True),
        (
            lambda ch: Client.from_channel(ch, api_key="k", metadata=[("cache-control", "no-cache")]),
            {"cache-control": "no-cache", "authorization": "Bearer k"},
            None,
            None,
        ),
        (
            lambda ch: Client.from_channel(ch, api_key="k", timeout=3).with_options(timeout=None),
            {"authorization": "Bearer k"},
            None,
            None,
        ),
        (
            lambda ch: Client.from_channel(ch, api_key="k", timeout=3).with_options(api_key="j"),
            {"authorization": "Bearer j"},
            3,
            None,
        ),
        (lambda ch: Client.from_channel(ch, api_key="k").with_options(api_key=None), {}, None, None),
        (
            lambda ch: Client.from_channel(ch, api_key="k", metadata=[("x-a", "1")]).with_options(
                api_key="j"
            ),
            {"x-a": "1", "authorization": "Bearer j"},
            None,
            None,
        ),
        (  # the CLI's --no-cache: the client's metadata plus one entry
            lambda ch: (c := Client.from_channel(ch, api_key="k")).with_options(
                metadata=(*c.metadata, ("cache-control", "no-cache"))
            ),
            {"authorization": "Bearer k", "cache-control": "no-cache"},
            None,
            None,
        ),
        (  # other metadata replaces the old, but the API key stays
            lambda ch: Client.from_channel(ch, api_key="k", metadata=[("x-a", "1")]).with_options(
                metadata=[("cache-control", "no-cache")]
            ),
            {"authorization": "Bearer k", "cache-control": "no-cache"},
            None,
            None,
        ),
        (  # ... unless the metadata brings its own
            lambda ch: Client.from_channel(ch, api_key="k").with_options(
                metadata=[("authorization", "Bearer j")]
            ),
            {"authorization": "Bearer j"},
            None,
            None,
        ),
        (lambda ch: Client.from_channel(ch, timeout=9).with_options(wait_for_ready=False), {}, 9, False),
    ],
)
def test_every_call_carries_the_clients_metadata_and_options(
    channel, pool, make, metadata, timeout, wait_for_ready
):
    client = make(channel)
    future = pool.submit(client.vector.delete_collection, vector.DeleteCollectionRequest(name="c"))
    sent_metadata, _ = answer_unary(
        channel,
        VECTOR.methods_by_name["DeleteCollection"],
        vector_service_pb2.DeleteCollectionResponse(name="c"),
    )
    assert future.result(WAIT).name == "c"
    assert sent_metadata == metadata
    assert channel.options == [
        Options("/citadel.vector.v1.VectorService/DeleteCollection", timeout, wait_for_ready, None)
    ]
    assert client.timeout == timeout


def test_with_options_shares_the_channel_and_leaves_the_original_alone(channel):
    original = Client.from_channel(channel, api_key="k", timeout=3)
    other = original.with_options(timeout=None, api_key="j")
    assert other.channel is original.channel
    assert original.metadata == (("authorization", "Bearer k"),) and original.timeout == 3
    assert other.metadata == (("authorization", "Bearer j"),) and other.timeout is None
    other.close()  # not its channel to close: the original still works
    assert original.channel is channel


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exception"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, AlreadyExists),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition),
        (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.CANCELLED, Cancelled),
        (grpc.StatusCode.INTERNAL, CitadelError),  # no class of its own: the base
        (grpc.StatusCode.UNKNOWN, CitadelError),
        (grpc.StatusCode.OUT_OF_RANGE, CitadelError),
    ],
)
def test_each_status_raises_its_exception_with_code_details_and_trailers(channel, pool, code, exception):
    client = Client.from_channel(channel)
    future = pool.submit(client.vector.get_collection, vector.GetCollectionRequest(name="nope"))
    trailing = (("x-request-id", "r-1"),)
    answer_unary(channel, VECTOR.methods_by_name["GetCollection"], None, code, "the words", trailing)
    with pytest.raises(exception) as raised:
        future.result(WAIT)
    error = raised.value
    assert type(error) is exception
    assert isinstance(error, grpc.RpcError)  # code written against plain grpcio keeps working
    assert error.code() is code and error.details() == "the words"
    assert tuple(kv for kv in error.trailing_metadata() if kv[0] != RUNTIME_KEY) == trailing
    assert str(error) == f"{code.name}: the words"


@pytest.mark.parametrize(
    ("trailing", "retry_after"),
    [
        ((("retry-after", "2.5"),), 2.5),
        ((("retry-after", "0"),), 0.0),
        ((("retry-after", "soon"),), None),
        ((("x-other", "1"),), None),
        ((), None),
    ],
)
def test_resource_exhausted_says_when_to_retry(channel, pool, trailing, retry_after):
    client = Client.from_channel(channel)
    future = pool.submit(client.vector.count_vectors, vector.CountVectorsRequest(collection="c"))
    answer_unary(
        channel,
        VECTOR.methods_by_name["CountVectors"],
        None,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "slow down",
        trailing,
    )
    with pytest.raises(ResourceExhausted) as raised:
        future.result(WAIT)
    assert raised.value.retry_after() == retry_after


# --- streams ------------------------------------------------------------------------------------


def job(state: int, done: int, total: int = 3) -> batch_service_pb2.WatchBatchJobResponse:
    return batch_service_pb2.WatchBatchJobResponse(
        job=batch_service_pb2.BatchJob(id="j1", state=state, done=done, total=total)
    )


def test_a_server_stream_yields_each_response_then_ends(channel, pool):
    client = Client.from_channel(channel, api_key="k", timeout=4)
    future = pool.submit(list, client.batch.watch_batch_job(batch.WatchBatchJobRequest(id="j1")))
    metadata, sent, rpc = channel.testing.take_unary_stream(BATCH.methods_by_name["WatchBatchJob"])
    assert batch_service_pb2.WatchBatchJobRequest.FromString(sent).id == "j1"
    assert metadata_of(metadata) == {"authorization": "Bearer k"}
    for done in range(3):
        rpc.send_response(job(batch_service_pb2.JOB_STATE_RUNNING, done).SerializeToString())
    rpc.send_response(job(batch_service_pb2.JOB_STATE_SUCCEEDED, 3).SerializeToString())
    rpc.terminate((), grpc.StatusCode.OK, "")
    events = future.result(WAIT)
    assert [(e.job.state, e.job.done) for e in events] == [
        (batch.JobState.RUNNING, 0),
        (batch.JobState.RUNNING, 1),
        (batch.JobState.RUNNING, 2),
        (batch.JobState.SUCCEEDED, 3),
    ]
    assert channel.options[0].timeout == 4


def test_a_server_stream_that_fails_raises_after_what_arrived(channel, pool):
    client = Client.from_channel(channel)
    received: list = []
    read_one = threading.Event()

    def read_all():
        for event in client.batch.watch_batch_job(batch.WatchBatchJobRequest(id="j1")):
            received.append(event.job.done)
            read_one.set()

    future = pool.submit(read_all)
    _, _, rpc = channel.testing.take_unary_stream(BATCH.methods_by_name["WatchBatchJob"])
    rpc.send_response(job(batch_service_pb2.JOB_STATE_RUNNING, 1).SerializeToString())
    assert read_one.wait(WAIT)  # grpc_testing drops unread responses when a call fails
    rpc.terminate((), grpc.StatusCode.UNAVAILABLE, "job queue unavailable (Redis); retry later")
    with pytest.raises(Unavailable, match="job queue unavailable"):
        future.result(WAIT)
    assert received == [1]


def test_closing_a_server_stream_cancels_the_call(channel, pool):
    client = Client.from_channel(channel)
    stream = client.batch.watch_batch_job(batch.WatchBatchJobRequest(id="j1"))
    first = pool.submit(next, stream)
    _, _, rpc = channel.testing.take_unary_stream(BATCH.methods_by_name["WatchBatchJob"])
    rpc.send_response(job(batch_service_pb2.JOB_STATE_RUNNING, 0).SerializeToString())
    assert first.result(WAIT).job.done == 0
    stream.close()  # the generator's close() reaches ResponseStream.close(): the call is cancelled
    pool.submit(rpc.cancelled).result(WAIT)  # returns once CANCELLED (raises on another code)


def upload_messages(n: int) -> Iterator[batch.UploadBatchJobRequest]:
    yield batch.UploadBatchJobRequest(
        header=batch.UploadBatchJobHeader(
            collection="c", operation=batch.Operation.BULK_UPSERT, idempotency_key="i"
        )
    )
    for start in range(0, n, 2):
        yield batch.UploadBatchJobRequest(
            items=batch.BatchItemList(
                items=[
                    batch.BatchItem(
                        id=f"v{i}", embedding=[float(i), 0.5], metadata=protobuf.Struct.from_dict({"i": i})
                    )
                    for i in range(start, min(n, start + 2))
                ]
            )
        )


def test_a_client_stream_sends_each_message_then_reads_the_reply(channel, pool):
    client = Client.from_channel(channel, api_key="w", timeout=60)
    future = pool.submit(client.batch.upload_batch_job, upload_messages(5))
    metadata, rpc = channel.testing.take_stream_unary(BATCH.methods_by_name["UploadBatchJob"])
    assert metadata_of(metadata) == {"authorization": "Bearer w"}
    sent = [batch_service_pb2.UploadBatchJobRequest.FromString(rpc.take_request()) for _ in range(4)]
    rpc.requests_closed()
    assert (
        sent[0].header.collection == "c"
        and sent[0].header.operation == batch_service_pb2.OPERATION_BULK_UPSERT
    )
    items = [item for message in sent[1:] for item in message.items.items]
    assert [(i.id, list(i.embedding), dict(i.metadata)) for i in items] == [
        (f"v{n}", [float(n), 0.5], {"i": float(n)}) for n in range(5)
    ]
    reply = batch_service_pb2.UploadBatchJobResponse(
        job=batch_service_pb2.BatchJob(id="j9", total=5), existing=True
    )
    rpc.terminate(reply.SerializeToString(), (), grpc.StatusCode.OK, "")
    result = future.result(WAIT)
    assert result.job.id == "j9" and result.job.total == 5 and result.existing
    assert channel.options[0].timeout == 60


def test_a_client_stream_whose_requests_raise_re_raises_that_exception(channel, pool):
    class BadRecord(ValueError):
        """Raised by the caller's request iterator, never by the client."""

    def messages():
        yield from upload_messages(2)
        raise BadRecord("notes.jsonl line 3: not JSON")

    client = Client.from_channel(channel)
    future = pool.submit(client.batch.upload_batch_job, messages())
    _, rpc = channel.testing.take_stream_unary(BATCH.methods_by_name["UploadBatchJob"])
    assert batch_service_pb2.UploadBatchJobRequest.FromString(rpc.take_request()).HasField("header")
    assert len(batch_service_pb2.UploadBatchJobRequest.FromString(rpc.take_request()).items.items) == 2
    with pytest.raises(BadRecord, match="line 3"):
        future.result(WAIT)  # the caller's own exception, not "Exception iterating requests!"


def test_a_client_stream_refused_by_the_server_raises_its_status(channel, pool):
    client = Client.from_channel(channel)
    future = pool.submit(client.batch.upload_batch_job, upload_messages(1))
    _, rpc = channel.testing.take_stream_unary(BATCH.methods_by_name["UploadBatchJob"])
    rpc.take_request()
    rpc.terminate(b"", (), grpc.StatusCode.INVALID_ARGUMENT, "header.collection: is required")
    with pytest.raises(InvalidArgument, match="header.collection"):
        future.result(WAIT)


def test_calls_from_several_threads_each_get_their_own_answer(channel, pool):
    client = Client.from_channel(channel, api_key="k")
    names = [f"c{i}" for i in range(6)]
    futures = [pool.submit(client.vector.get_collection, vector.GetCollectionRequest(name=n)) for n in names]
    for _ in names:
        _, sent, rpc = channel.testing.take_unary_unary(VECTOR.methods_by_name["GetCollection"])
        name = vector_service_pb2.GetCollectionRequest.FromString(sent).name
        reply = vector_service_pb2.GetCollectionResponse(collection=resources_pb2.Collection(name=name))
        rpc.terminate(reply.SerializeToString(), (), grpc.StatusCode.OK, "")
    assert [f.result(WAIT).collection.name for f in futures] == names
