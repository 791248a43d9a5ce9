"""Rate limits per API key (or per role) and per tenant, before any work is done.

Each call takes tokens from its principal's bucket (`key:<id>` when configured, else
`role:<role>`) and from its tenant's (`tenant:<id>`): one, or, when its method's
`rate_limit.cost_field` option names a repeated request field, one per element of it
(GenerateEmbedding: per text). A bucket short of them is RESOURCE_EXHAUSTED with a retry-after.
If the shared bucket store (Redis) fails, calls go through and it is counted.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import grpc
from redis.exceptions import RedisClusterException, RedisError

from citadel.options.v1 import options_pb2
from citadel.server.auth.principal import ANONYMOUS, Principal
from citadel.server.chain import Call, Handler, Reply
from citadel.server.degraded import FailureReporter
from citadel.server.errors import ApiError
from citadel.server.methods import MethodSpec, PolicyError
from citadel.server.metrics import Metrics
from citadel.server.ratelimit.buckets import BucketStore, Limit


class RateLimitInterceptor:
    def __init__(self, limits: dict[str, Limit], buckets: BucketStore, metrics: Metrics) -> None:
        self._limits = limits
        self._buckets = buckets
        self._metrics = metrics
        self._failures = FailureReporter("rate-limit store", metrics.rate_limit_errors)

    def for_method(self, spec: MethodSpec):
        """With no limits configured there is nothing to take: the chain leaves it out. A
        method whose option names a cost field gets a step that reads that field's length."""
        cost_field = cost_field_of(spec)
        if not self._limits:
            return None
        return partial(self.__call__, cost_field=cost_field) if cost_field else self

    async def __call__(self, call: Call, request: Any, proceed: Handler, cost_field: str = "") -> Reply:
        if self._limits:
            cost = max(1, len(getattr(request, cost_field))) if cost_field else 1
            principal: Principal = call.state.get("principal", ANONYMOUS)
            for bucket, limit in self._buckets_for(principal):
                try:
                    decision = await self._buckets.take(bucket, limit, cost)
                except (RedisError, RedisClusterException, OSError) as e:  # Redis (Cluster) down
                    self._failures.report(e)
                    break
                if not decision.allowed:
                    kind = bucket.partition(":")[0]
                    self._metrics.rate_limited.labels(kind).inc()
                    retry = max(1, math.ceil(decision.retry_after))
                    call.response_metadata["retry-after"] = str(retry)
                    costs = f"; this call costs {cost} tokens, one per {cost_field} entry" if cost > 1 else ""
                    raise ApiError(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"rate limit of {bucket} exceeded ({limit.rate:g}/s, burst {limit.burst:g}{costs}); "
                        f"retry after {retry} s",
                    )
        return await proceed(call, request)

    def _buckets_for(self, principal: Principal) -> list[tuple[str, Limit]]:
        chosen = []
        key_id = principal.subject.removeprefix("key:") if principal.subject.startswith("key:") else ""
        role = "anonymous" if principal is ANONYMOUS else principal.role_name
        own = self._limits.get(f"key:{key_id}") if key_id else None
        if own is not None:
            chosen.append((f"key:{key_id}", own))
        elif f"role:{role}" in self._limits:
            # A role's limit applies to each caller with that role separately.
            chosen.append((f"role:{role}:{principal.subject}", self._limits[f"role:{role}"]))
        if principal.tenant and f"tenant:{principal.tenant}" in self._limits:
            chosen.append((f"tenant:{principal.tenant}", self._limits[f"tenant:{principal.tenant}"]))
        return chosen


def cost_field_of(spec: MethodSpec) -> str:
    """The request field whose length is a call's cost (option rate_limit.cost_field), or ''.
    A name that is not a repeated field of the request stops the gateway at start-up."""
    name = spec.descriptor.GetOptions().Extensions[options_pb2.rate_limit].cost_field
    if not name:
        return ""
    if spec.client_streaming:
        raise PolicyError(f"{spec.service}.{spec.name}: rate_limit.cost_field needs a unary request")
    field = spec.descriptor.input_type.fields_by_name.get(name)
    if field is None or not field.is_repeated:
        raise PolicyError(
            f"{spec.service}.{spec.name}: rate_limit.cost_field {name!r} is not a repeated field of "
            f"{spec.descriptor.input_type.name}"
        )
    return name
