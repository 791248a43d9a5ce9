"""Child spans for backend operations, by wrapping a backend object rather than editing it.

`Traced(target, ...)` answers like `target`, except that the named async methods run inside a
span `{component}.{method}` (store.search, cache.lookup, ratelimit.take, jobs.submit, ...).
A span is made only when the caller's span is recording, so background work outside any
traced call (queue polling, batch chunks) costs a context look-up and nothing more.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

Attributes = dict[str, Any]


@dataclass(frozen=True)
class Describe:
    """What a method's span records: from its arguments (`before`, self excluded) and, when it
    returns, from its result (`after`)."""

    before: Callable[[tuple, dict], Attributes] = lambda args, kwargs: {}
    after: Callable[[Any], Attributes] = lambda result: {}


def _collection(args: tuple, kwargs: dict) -> Attributes:
    first = args[0] if args else kwargs.get("collection", kwargs.get("name", kwargs.get("spec")))
    name = first if isinstance(first, str) else getattr(first, "name", None)
    return {"db.collection.name": name} if isinstance(name, str) else {}


def _collection_and_size(attribute: str) -> Callable[[tuple, dict], Attributes]:
    """The collection, and how many items the second argument holds."""

    def before(args: tuple, kwargs: dict) -> Attributes:
        out = _collection(args, kwargs)
        if len(args) > 1 and hasattr(args[1], "__len__"):
            out[attribute] = len(args[1])
        return out

    return before


def _count(attribute: str) -> Callable[[Any], Attributes]:
    """A list result's length, or an int result itself."""

    def after(result: Any) -> Attributes:
        if isinstance(result, list):
            return {attribute: len(result)}
        if isinstance(result, int) and not isinstance(result, bool):
            return {attribute: result}
        return {}

    return after


STORE_METHODS: dict[str, Describe] = {
    "create_collection": Describe(_collection),
    "get_collection": Describe(_collection),
    "list_collections": Describe(after=_count("citadel.store.collections")),
    "delete_collection": Describe(_collection),
    "upsert": Describe(_collection_and_size("citadel.store.points")),
    "retrieve": Describe(_collection_and_size("citadel.store.ids"), _count("citadel.store.found")),
    "delete_ids": Describe(_collection_and_size("citadel.store.ids"), _count("citadel.store.deleted")),
    "delete_matching": Describe(_collection, _count("citadel.store.deleted")),
    "search": Describe(_collection, _count("citadel.store.results")),
    "scroll": Describe(_collection),
    "count": Describe(_collection, _count("citadel.store.count")),
}


def _keys(args: tuple, kwargs: dict) -> Attributes:
    return {"citadel.cache.keys": len(args[1])} if len(args) > 1 else {}


def _hits(result: Any) -> Attributes:
    if not isinstance(result, list):
        return {}
    return {"citadel.cache.hits": sum(1 for entry in result if getattr(entry, "value", None) is not None)}


def _entries(args: tuple, kwargs: dict) -> Attributes:
    return {"citadel.cache.entries": len(args[0])} if args and hasattr(args[0], "__len__") else {}


CACHE_METHODS: dict[str, Describe] = {
    "lookup": Describe(_keys, _hits),
    "store": Describe(_entries),
    "bump": Describe(),
    "flush": Describe(),
    "usage": Describe(),
}


def _bucket(args: tuple, kwargs: dict) -> Attributes:
    # The kind only (key, role or tenant): the bucket's name holds the caller's identity.
    return (
        {"citadel.ratelimit.bucket_kind": args[0].partition(":")[0]}
        if args and isinstance(args[0], str)
        else {}
    )


def _allowed(result: Any) -> Attributes:
    allowed = getattr(result, "allowed", None)
    return {} if allowed is None else {"citadel.ratelimit.allowed": bool(allowed)}


RATE_LIMIT_METHODS: dict[str, Describe] = {"take": Describe(_bucket, _allowed)}


def _job(args: tuple, kwargs: dict) -> Attributes:
    first = args[0] if args else None
    job_id = first if isinstance(first, str) else getattr(first, "id", None)
    out: Attributes = {"citadel.job.id": job_id} if isinstance(job_id, str) and job_id else {}
    if len(args) > 1 and isinstance(args[1], list):
        out["citadel.job.chunks"] = len(args[1])
    return out


QUEUE_METHODS: dict[str, Describe] = {
    "submit": Describe(_job),
    "get": Describe(_job),
    "next_change": Describe(_job),  # a watch waiting for the job's next write
    "list": Describe(after=_count("citadel.job.count")),
    "mark_running": Describe(_job),
    "cancel": Describe(_job),
    "depth": Describe(after=_count("citadel.job.queue_depth")),
}


def redis_attributes(client: Any) -> dict[str, Any]:
    """db.system.name and the server's address for spans of a Redis-backed component."""
    if client is None:
        return {}
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}) or {}
    out: dict[str, Any] = {"db.system.name": "redis"}
    if kwargs.get("host"):
        out["server.address"] = kwargs["host"]
        out["server.port"] = int(kwargs.get("port", 6379))
    elif kwargs.get("path"):
        out["server.address"] = kwargs["path"]
    out["db.namespace"] = str(kwargs.get("db", 0))
    return out


class Traced:
    """`target` with its listed async methods traced; every other attribute is the target's."""

    def __init__(
        self,
        target: Any,
        tracer: trace.Tracer,
        component: str,
        methods: Mapping[str, Describe],
        attributes: Mapping[str, Any],
        remote: bool,
    ) -> None:
        self._target = target
        kind = SpanKind.CLIENT if remote else SpanKind.INTERNAL  # a server, or in process
        for name, describe in methods.items():
            method = getattr(target, name, None)
            if method is not None:
                setattr(
                    self, name, _traced(method, tracer, f"{component}.{name}", kind, attributes, describe)
                )

    @property
    def traced(self) -> Any:
        """The object being traced."""
        return self._target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def __repr__(self) -> str:
        return f"Traced({self._target!r})"


def _traced(
    method: Callable[..., Any],
    tracer: trace.Tracer,
    span_name: str,
    kind: SpanKind,
    attributes: Mapping[str, Any],
    describe: Describe,
) -> Callable[..., Any]:
    operation = span_name.rpartition(".")[2]
    fixed = (
        {**attributes, "db.operation.name": operation}
        if attributes.get("db.system.name")
        else dict(attributes)
    )

    @functools.wraps(method)
    async def run(*args: Any, **kwargs: Any) -> Any:
        if not trace.get_current_span().is_recording():
            return await method(*args, **kwargs)
        with tracer.start_as_current_span(
            span_name, kind=kind, attributes={**fixed, **describe.before(args, kwargs)}
        ) as span:
            result = await method(*args, **kwargs)
            span.set_attributes(describe.after(result))
            return result

    return run
