"""HTTP request headers → the protocol-neutral Call: metadata, deadline and request id.

- `Authorization`, `Cache-Control`, every `x-*` header and `Grpc-Metadata-<key>` (as `<key>`)
  become metadata, keys lower-case, as a gRPC client would send them.
- A deadline comes from `grpc-timeout` (gRPC's own format: `250m`, `5S`, `1H`; units
  H M S m u n) or `X-Request-Timeout` (seconds, decimals allowed); with both, the sooner wins.
- `x-request-id` is honoured when the client sends one (up to 128 characters), otherwise the
  Call's generated id is used; either way it comes back as the `x-request-id` header.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

import grpc

from citadel.server.chain import Call
from citadel.server.errors import ApiError
from citadel.server.methods import MethodSpec

_GRPC_TIMEOUT = re.compile(r"(\d{1,8})([HMSmun])\Z")
_UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_METADATA_PREFIX = "grpc-metadata-"
MAX_REQUEST_ID = 128
# Standard headers whose meaning the chain shares with gRPC metadata of the same name.
_PASSED_HEADERS = frozenset({"authorization", "cache-control"})


def header_map(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI headers as a dict, names lower-case, repeated headers joined with ', '."""
    out: dict[str, str] = {}
    for name, value in raw_headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def metadata_of(headers: dict[str, str]) -> dict[str, str]:
    metadata = {}
    for key, value in headers.items():
        if key.startswith(_METADATA_PREFIX):
            metadata[key[len(_METADATA_PREFIX) :]] = value
        elif key in _PASSED_HEADERS or key.startswith("x-"):
            metadata[key] = value
    return metadata


def deadline_of(headers: dict[str, str], now: float | None = None) -> float | None:
    now = time.monotonic() if now is None else now
    timeouts = []
    grpc_timeout = headers.get("grpc-timeout")
    if grpc_timeout is not None:
        m = _GRPC_TIMEOUT.match(grpc_timeout.strip())
        if m is None:
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"grpc-timeout header: {grpc_timeout!r} is not a gRPC timeout such as '500m' or '5S'",
            )
        timeouts.append(int(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    request_timeout = headers.get("x-request-timeout")
    if request_timeout is not None:
        try:
            seconds = float(request_timeout)
        except ValueError:
            seconds = -1.0
        if not seconds > 0 or seconds == float("inf"):
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"X-Request-Timeout header: {request_timeout!r} is not a positive number of seconds",
            )
        # No longer than grpc-timeout can say (8 digits of hours): a larger float would
        # overflow the event loop's clock arithmetic.
        timeouts.append(min(seconds, 99_999_999 * 3600.0))
    return now + min(timeouts) if timeouts else None


def http_call(spec: MethodSpec, protocol: str, headers: dict[str, str]) -> Call:
    """A Call for an HTTP request (REST or GraphQL). Raises ApiError for a bad timeout header."""
    call = Call(method=spec, protocol=protocol, metadata=metadata_of(headers), deadline=deadline_of(headers))
    request_id = headers.get("x-request-id")
    if request_id:
        call.request_id = request_id[:MAX_REQUEST_ID]
    return call


def request_id_of(headers: dict[str, str]) -> str | None:
    request_id = headers.get("x-request-id")
    return request_id[:MAX_REQUEST_ID] if request_id else None
