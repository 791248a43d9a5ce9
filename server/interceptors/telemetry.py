"""Metrics and one structured log line per call, for every protocol alike."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from citadel.server.chain import Call, Handler, Reply
from citadel.server.errors import ApiError
from citadel.server.interceptors.errors import failure_code
from citadel.server.metrics import Metrics

access_log = logging.getLogger("citadel.access")


class TelemetryInterceptor:
    def __init__(self, metrics: Metrics, log_every_call: bool) -> None:
        self._metrics = metrics
        self._log_every_call = log_every_call
        # (method descriptor, protocol) -> (method path, latency histogram child): the path and
        # the child are the same on every call of a method, so they are looked up once.
        self._series: dict[tuple[Any, str], tuple[str, Any]] = {}

    async def __call__(self, call: Call, request: Any, proceed: Handler) -> Reply:
        started = time.perf_counter()
        metrics = self._metrics
        metrics.calls_in_flight += 1
        code = "OK"
        try:
            return await proceed(call, request)
        except ApiError as e:
            code = e.code.name
            raise
        except asyncio.CancelledError:
            remaining = call.time_remaining()
            code = "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
            raise
        except Exception as e:
            code = failure_code(e).name  # as the errors interceptor will answer it
            raise
        finally:
            elapsed = time.perf_counter() - started
            metrics.calls_in_flight -= 1
            # Counted and logged on the loop's next turn, once the reply is on its way, rather
            # than before it: same figures and line (the duration is taken here), but the
            # caller does not wait for the Prometheus updates and the access line's formatting
            # and write. Anything handled later on the loop (a scrape) runs after it.
            asyncio.get_running_loop().call_soon(self._record, call, code, elapsed)

    def _record(self, call: Call, code: str, elapsed: float) -> None:
        metrics = self._metrics
        protocol = call.protocol
        series = self._series.get((call.method.descriptor, protocol))
        if series is None:
            path = call.method.path
            series = self._series[(call.method.descriptor, protocol)] = (
                path,
                metrics.latency.labels(path, protocol),
            )
        method, latency = series
        metrics.child(metrics.requests, method, protocol, code).inc()
        latency.observe(elapsed)
        # The line's fields are gathered only when it is going to be written.
        if (self._log_every_call or code != "OK") and access_log.isEnabledFor(logging.INFO):
            principal = call.state.get("principal")
            access_log.info(
                "call",
                extra={
                    "request_id": call.request_id,
                    "method": method,
                    "protocol": protocol,
                    "code": code,
                    "duration_ms": round(elapsed * 1000, 3),
                    "subject": principal.subject if principal else "",
                    **({"trace_id": call.state["trace_id"]} if "trace_id" in call.state else {}),
                },
            )
