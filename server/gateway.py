"""Builds the gateway from settings and runs it: store, chain, gRPC server, health.

Start-up order follows dependencies (store before the servers that use it); shutdown is
the reverse, with in-flight calls given the grace period to finish.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
import redis.asyncio as aioredis
from google.protobuf import descriptor, descriptor_pb2
from grpc_health.v1 import health, health_pb2

from citadel.adapters.app import create_app
from citadel.server import redis_client
from citadel.server.chain import Chain
from citadel.server.config import Settings
from citadel.server.descriptors import SERVICES
from citadel.server.grpc_server import build_server
from citadel.server.http_server import HttpServer
from citadel.server.interceptors.stack import build_stack
from citadel.server.jobs.factory import open_queue
from citadel.server.jobs.queue import JobQueue
from citadel.server.jobs.worker import WorkerPool
from citadel.server.methods import MethodSpec, method_specs
from citadel.server.metrics import Metrics
from citadel.server.models.catalog import catalog_from_settings
from citadel.server.models.router import ModelRouter
from citadel.server.servicers.admin import AdminServicer
from citadel.server.servicers.batch import BatchServicer
from citadel.server.servicers.vector import VectorServicer
from citadel.server.store.base import VectorStore
from citadel.server.store.factory import open_store

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
    ) -> None:
        self.settings = settings
        self._services = services
        self._extra_servicers = dict(extra_servicers or {})
        self._extra_sets = tuple(extra_descriptor_sets)
        self.specs: list[MethodSpec] = method_specs(services)  # fails fast on a missing policy
        self.store: VectorStore | None = None
        self.metrics = Metrics()
        self.redis: aioredis.Redis | None = None
        self.jobs: JobQueue | None = None
        self.workers: WorkerPool | None = None
        self.chain: Chain | None = None
        self.models: ModelRouter | None = None
        self.health = health.aio.HealthServicer()
        self._grpc: grpc.aio.Server | None = None
        self._http: HttpServer | None = None
        self.ports: Ports | None = None
        self.ready = False

    async def start(self) -> Ports:
        try:
            return await self._start()
        except BaseException:
            await self.stop()  # release whatever did start: ports, files, clients
            raise

    async def _start(self) -> Ports:
        s = self.settings
        self.store = store = await open_store(s)
        if s.redis_url:
            self.redis = await redis_client.connect(s.redis_url)
        self.models = embeddings = ModelRouter(catalog_from_settings(s))
        stack = build_stack(s, self.metrics, self.redis, embeddings)
        self.jobs = open_queue(s, self.redis)
        submit_spec = next(m for m in self.specs if m.path == "/citadel.batch.v1.BatchService/SubmitBatchJob")
        self.workers = WorkerPool(
            self.jobs, store, embeddings, submit_spec, s.jobs_workers, s.jobs_lease_seconds
        )
        batch = BatchServicer(self.jobs, store, self.workers, s.jobs_chunk_size)
        embeddings.jobs = batch  # hybrid models queue large requests as batch jobs
        servicers = {
            "citadel.vector.v1.VectorService": VectorServicer(store, embeddings),
            "citadel.admin.v1.AdminService": AdminServicer(stack.cache),
            "citadel.batch.v1.BatchService": batch,
            **self._extra_servicers,
        }
        self.chain = Chain(stack.interceptors, servicers)
        self._grpc = build_server(self.specs, self.chain, self.health, s.max_message_bytes, self._extra_sets)
        grpc_port = self._grpc.add_insecure_port(f"{s.host}:{s.grpc_port}")
        await self._grpc.start()
        self.workers.start()
        embeddings.start()  # health checks
        self._http = HttpServer(create_app(self), s.host, s.http_port)
        await self._http.start()
        for name in ("", *(svc.full_name for svc in self._services)):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.ports = Ports(grpc=grpc_port, http=self._http.port)
        self.ready = True
        log.info("citadel ready: gRPC on %s:%d, HTTP on %s:%d", s.host, grpc_port, s.host, self._http.port)
        return self.ports

    async def stop(self) -> None:
        self.ready = False
        await self.health.enter_graceful_shutdown()
        if self._http is not None:
            await self._http.stop()
        if self._grpc is not None:
            await self._grpc.stop(self.settings.grace_seconds)
        if self.workers is not None:
            await self.workers.stop(self.settings.grace_seconds)
        if self.jobs is not None:
            await self.jobs.close()
        if self.models is not None:
            await self.models.close()
        if self.store is not None:
            await self.store.close()
        if self.redis is not None:
            await self.redis.aclose()
        log.info("citadel stopped")
