"""Metrics and one structured log line per call, for every protocol alike."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from citadel.server.chain import Call, Handler, Reply
from citadel.server.errors import ApiError
from citadel.server.metrics import Metrics

access_log = logging.getLogger("citadel.access")


class TelemetryInterceptor:
    def __init__(self, metrics: Metrics, log_every_call: bool) -> None:
        self._metrics = metrics
        self._log_every_call = log_every_call

    async def __call__(self, call: Call, request: Any, proceed: Handler) -> Reply:
        started = time.perf_counter()
        self._metrics.in_flight.inc()
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
        except Exception:
            code = "INTERNAL"
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.in_flight.dec()
            method = call.method.path
            self._metrics.requests.labels(method, call.protocol, code).inc()
            self._metrics.latency.labels(method, call.protocol).observe(elapsed)
            if self._log_every_call or code != "OK":
                principal = call.state.get("principal")
                access_log.info(
                    "call",
                    extra={
                        "request_id": call.request_id,
                        "method": method,
                        "protocol": call.protocol,
                        "code": code,
                        "duration_ms": round(elapsed * 1000, 3),
                        "subject": principal.subject if principal else "",
                        **({"trace_id": call.state["trace_id"]} if "trace_id" in call.state else {}),
                    },
                )
