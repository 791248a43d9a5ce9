"""Builds the gateway from settings and runs it.

Components start in dependency order, each with a timeout and a readiness check: store →
Redis (cache, rate limits, queue) → model router and its health checks → job queue, embedding
service and batch workers → gRPC server → HTTP adapters. Shutdown is the reverse, with
in-flight calls given the grace period to finish.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import redis.asyncio as aioredis
from google.protobuf import descriptor, descriptor_pb2
from grpc_health.v1 import health, health_pb2

from citadel.adapters.app import create_app
from citadel.server import ports, redis_client
from citadel.server.chain import Chain
from citadel.server.config import Settings
from citadel.server.dependencies import DependencyWatcher
from citadel.server.descriptors import SERVICES
from citadel.server.embeddings.service import EmbeddingService
from citadel.server.grpc_server import build_server
from citadel.server.http_server import HttpServer
from citadel.server.interceptors.stack import Stack, build_stack
from citadel.server.jobs.factory import open_queue
from citadel.server.jobs.queue import JobQueue
from citadel.server.jobs.submit import JobSubmitter
from citadel.server.jobs.worker import WorkerPool
from citadel.server.lifecycle import Lifecycle
from citadel.server.methods import MethodSpec, method_specs
from citadel.server.metrics import Metrics
from citadel.server.models.router import ModelRouter
from citadel.server.servicers.admin import AdminServicer
from citadel.server.servicers.batch import BatchServicer
from citadel.server.servicers.validation import TextLimits
from citadel.server.servicers.vector import VectorServicer
from citadel.server.store.base import VectorStore
from citadel.server.store.factory import open_store, store_in_use

if TYPE_CHECKING:
    from citadel.server.tracing.provider import Tracing

log = logging.getLogger("citadel")


@dataclass
class Ports:
    grpc: int
    http: int | None = None


class Gateway:
    """One gateway process: every component, started and stopped in dependency order."""

    def __init__(
        self,
        settings: Settings,
        services: Sequence[descriptor.ServiceDescriptor] = SERVICES,
        extra_servicers: Mapping[str, object] | None = None,
        extra_descriptor_sets: Sequence[descriptor_pb2.FileDescriptorSet] = (),
        shared: Mapping[str, object] | None = None,
        metrics_view: Callable[[bytes], Awaitable[bytes]] | None = None,
        worker: int = 0,
    ) -> None:
        self.settings = settings
        self.worker = worker  # under --workers: this process's index (0..N-1), as logs and metrics say
        # Under --workers: the store, cache, buckets and queue the supervisor owns (workers/host.py).
        self._shared = dict(shared or {})
        self._metrics_view = metrics_view  # under --workers: this worker's figures merged with the rest
        self._services = services
        self._extra_servicers = dict(extra_servicers or {})
        self._extra_sets = tuple(extra_descriptor_sets)
        self.specs: list[MethodSpec] = method_specs(services)  # fails fast on a missing policy
        self.store: VectorStore | None = None
        self.metrics = Metrics()
        self.redis: aioredis.Redis | None = None
        self.redis_errors = redis_client.ErrorSignal()  # its connections' failures, as they happen
        self.dependencies: DependencyWatcher | None = None
        self.jobs: JobQueue | None = None
        self.workers: WorkerPool | None = None
        self.chain: Chain | None = None
        self.models: ModelRouter | None = None
        self.embeddings: EmbeddingService | None = None
        self.health = health.aio.HealthServicer()
        self.lifecycle = Lifecycle(self.health, settings.startup_timeout_seconds)
        self._batch: BatchServicer | None = None
        self._grpc: grpc.aio.Server | None = None
        self._http: HttpServer | None = None
        self.ports: Ports | None = None
        self.tracing: Tracing | None = None  # OpenTelemetry, when settings.tracing_enabled

    @property
    def ready(self) -> bool:
        return self.lifecycle.ready

    async def render_metrics(self) -> bytes:
        """What /metrics serves."""
        own = self.metrics.render()
        return own if self._metrics_view is None else await self._metrics_view(own)

    async def start(self) -> Ports:
        try:
            return await self._start()
        except BaseException:
            await self.stop()  # release whatever did start: ports, files, clients
            raise

    async def _start(self) -> Ports:
        s, life = self.settings, self.lifecycle
        if s.tracing_enabled:
            from citadel.server.tracing.provider import Tracing  # the optional extra, only when on

            self.tracing = Tracing(s)
        self.store = store = await life.start("store", self._open_store(), detail=self._store_detail())
        own_store = store
        if self.tracing is not None:
            self.store = store = self.tracing.store(store)
        if s.redis_url:
            self.redis = await life.start(
                "redis",
                redis_client.connect(s.redis_url, self.redis_errors, cluster=s.redis_cluster),
                detail=redis_client.redacted(s.redis_url),
                required=not s.redis_optional,
            )
        self.models = models = await life.start(
            "models", self._start_models(), detail="embedding model router"
        )
        stack = build_stack(
            s,
            self.metrics,
            self.redis,
            models.identity,
            self.tracing,
            cache_backend=self._shared.get("cache"),
            buckets=self._shared.get("buckets"),
        )
        log.info("where state lives: %s", _state_backends(s, self.redis, self._shared))
        self.jobs = await life.start(
            "jobs",
            self._start_jobs(store, models, stack),
            detail=_queue_detail(s, self.redis, self._shared),
        )
        servicers = {
            "citadel.vector.v1.VectorService": VectorServicer(
                store,
                self.embeddings,
                max_upsert_vectors=s.vectors_per_upsert,
                fingerprints=self.workers.fingerprints,
            ),
            "citadel.admin.v1.AdminService": AdminServicer(stack.cache, life, self.worker, s.workers),
            "citadel.batch.v1.BatchService": self._batch,
            **self._extra_servicers,
        }
        self.chain = Chain(stack.interceptors, servicers)
        grpc_port = await life.start("grpc", self._start_grpc(), detail=f"{s.host}:{s.grpc_port}")
        http_port = await life.start("http", self._start_http(), detail=f"{s.host}:{s.http_port}")
        for svc in self._services:
            await self.health.set(svc.full_name, health_pb2.HealthCheckResponse.SERVING)
        self.dependencies = self._watch_dependencies(own_store)
        self.ports = Ports(grpc=grpc_port, http=http_port)
        log.info("citadel ready: gRPC on %s:%d, HTTP on %s:%d", s.host, grpc_port, s.host, http_port)
        return self.ports

    async def _open_store(self) -> VectorStore:
        hosted = self._shared.get("store")
        if hosted is None:
            return await open_store(self.settings)
        await hosted.list_collections()  # the supervisor answers
        return hosted

    def _store_detail(self) -> str:
        where = store_in_use(self.settings)  # the engine "auto" lands on, as the log says
        return f"{where}, held by the supervisor" if "store" in self._shared else where

    def _watch_dependencies(self, store: VectorStore) -> DependencyWatcher:
        """Keeps the states of store, Redis, models and job queue true while the gateway runs."""
        s = self.settings
        watcher = DependencyWatcher(self.lifecycle)
        if s.qdrant_url and "store" not in self._shared:  # embedded or the supervisor's: in process
            watcher.watch("store", store.check_reachable, every=1.0)
        if self.redis is not None:
            watcher.watch("redis", self.redis.ping, required=not s.redis_optional)
            self.redis_errors.listener = lambda error: watcher.failed("redis", error)
        if self.jobs is not None:
            if self.redis is not None and "queue" not in self._shared:
                watcher.follow("jobs", "redis")
            else:
                watcher.watch("jobs", self.jobs.depth, every=2.0)
        if self.models is not None:
            watcher.watch_models(self.models, self.lifecycle.components["models"].detail)
        self.metrics.watch_components(self.lifecycle)
        progress = getattr(store, "index_progress", None)
        # The embedded engine in this process reports its builds (read at scrape time, which
        # cannot wait: under --workers the store's proxy only offers coroutines).
        if progress is not None and not inspect.iscoroutinefunction(progress):
            self.metrics.watch_indexes(progress)
        watcher.start()
        return watcher

    async def _start_models(self) -> ModelRouter:
        router = ModelRouter(self.settings.parsed.catalog)
        router.start()  # active health checks run from here on
        self.metrics.watch_models(router)
        if self.tracing is not None:
            self.tracing.models(router)
        return router

    async def _start_jobs(self, store: VectorStore, models: ModelRouter, stack: Stack) -> JobQueue:
        """The job queue, and what queues and runs jobs: the embedding service (a hybrid
        model's over-budget request becomes a job), BatchService and the batch workers."""
        s = self.settings
        queue = self._shared.get("queue") or open_queue(s, self.redis)
        if self.tracing is not None:
            queue = self.tracing.queue(queue, self.redis)
        await queue.depth()  # the queue answers
        jobs = JobSubmitter(queue, s.jobs_chunk_size)
        self.embeddings = EmbeddingService(models, TextLimits.from_settings(s), jobs, stack.text_cache)
        on_write = stack.cache.invalidate if stack.cache is not None else None
        self.workers = WorkerPool(
            queue,
            store,
            self.embeddings,
            s.jobs_workers,
            s.jobs_lease_seconds,
            self.metrics,
            submitted=jobs.submitted,
            on_write=on_write,
            min_cosine=s.parsed.catalog.resilience.replica_min_cosine,
            reembed_settle_seconds=s.jobs_reembed_settle_seconds,
        )
        self._batch = BatchServicer(queue, store, jobs, models, self.workers.fingerprints)
        self.workers.start()
        return queue

    async def _start_grpc(self) -> int:
        s = self.settings
        self._grpc = build_server(
            self.specs,
            self.chain,
            self.health,
            s.max_message_bytes,
            self._extra_sets,
            reuse_port=s.workers > 1,
        )
        try:
            port = self._grpc.add_insecure_port(f"{s.host}:{s.grpc_port}")
        except RuntimeError:  # grpc says "Failed to bind to address", not why nor which setting
            raise ports.cannot_listen(
                "grpc_port", s.host, s.grpc_port, ports.why_bind_failed(s.host, s.grpc_port)
            ) from None
        await self._grpc.start()
        return port

    async def _start_http(self) -> int:
        app = create_app(
            self.specs,
            self.chain,
            self.settings,
            self.lifecycle,
            self.render_metrics,
            self.worker,
            self._extra_sets,
        )
        if self.tracing is not None:
            app = self.tracing.http_app(app)
        s = self.settings
        try:
            # Twice the GraphQL bound: a message just over it still reaches the adapter, whose
            # close reason names limits.graphql_body_bytes; far larger ones are cut by uvicorn.
            ws_max = 2 * s.graphql_body_bytes
            self._http = HttpServer(app, s.host, s.http_port, reuse_port=s.workers > 1, ws_max_bytes=ws_max)
        except OSError as e:
            raise ports.cannot_listen("http_port", s.host, s.http_port, e) from None
        await self._http.start()
        return self._http.port

    async def stop(self) -> None:
        """Stop accepting, report NOT_SERVING, let in-flight calls finish within the grace
        period, hand unfinished batch chunks back, then close clients: the reverse of start."""
        life, grace = self.lifecycle, self.settings.grace_seconds
        if self.dependencies is not None:
            await self.dependencies.stop()  # shutdown owns the states from here
        for name in ("http", "grpc", "jobs"):
            if name in life.components:
                await life.mark(name, "stopping")
        await self.health.enter_graceful_shutdown()
        servers = []
        if self._http is not None:
            servers.append(self._http.stop())
        if self._grpc is not None:
            servers.append(self._grpc.stop(grace))
        await asyncio.gather(*servers)
        if self.workers is not None:
            await self.workers.stop(grace)
        if self.jobs is not None:
            await self.jobs.close()
        if self.models is not None:
            await self.models.close()
        if self.store is not None:
            await self.store.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.tracing is not None:
            await self.tracing.close()  # the last spans go out (bounded when the collector is down)
        for component in life.components.values():
            if component.state != "failed":
                await life.mark(component.name, "stopped")
        log.info("citadel stopped")


def _state_backends(s: Settings, redis, shared: Mapping[str, object]) -> str:
    """Which Redis (URL redacted) or in-process store the cache, the rate limits and the job
    queue use: an operator who set REDIS_URL sees at start-up whether it was taken."""
    if redis is not None:
        at = f"Redis {'Cluster ' if s.redis_cluster else ''}at {redis_client.redacted(s.redis_url)}"
        where = {"cache": at, "rate limits": at, "job queue": f"{at} (streams)"}
    else:
        held = ", held by the supervisor"
        where = {
            "cache": "in process" + (held if "cache" in shared else ""),
            "rate limits": "in process" + (held if "buckets" in shared else ""),
            "job queue": f"SQLite in {s.data_dir}" + (held if "queue" in shared else ""),
        }
    if not s.cache_enabled:
        where["cache"] = "off (cache.enabled = false)"
    return "; ".join(f"{name}: {place}" for name, place in where.items())


def _queue_detail(s: Settings, redis, shared: Mapping[str, object]) -> str:
    where = "redis streams" if redis is not None else f"sqlite in {s.data_dir}"
    return f"{where}, held by the supervisor" if "queue" in shared else where
