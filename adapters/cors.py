"""Cross-origin calls from browser pages (CORS) to every route on port 8000.

Off unless `server.cors_allow_origins` lists origins: then the app is served unwrapped and this
module costs nothing. When on, in front of REST, GraphQL and whatever else port 8000 serves:

- a preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin is
  answered 204 with the allowed methods and headers (`authorization` among them by default) and
  `server.cors_max_age_seconds`; anything else asked for is refused, naming the setting;
- a request from an allowed origin is answered with Access-Control-Allow-Origin, and the
  gateway's own reply headers (request id, retry-after) exposed to the page;
- a request or WebSocket handshake whose Origin is neither allowed nor the gateway's own is
  refused 403 before it reaches the chain: a browser sends "simple" requests (a form-like POST)
  without a preflight, and hiding the answer from the page would not undo the write.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import grpc

from citadel.adapters.errors import status_json

# A browser's Origin header: scheme://host[:port], nothing after it.
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\s]+$")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
# Reply headers a page may read besides the CORS-safelisted ones (gRPC-Web and Connect
# clients read the status and the content encodings from these).
EXPOSED = (
    "x-request-id, retry-after, cache-status, grpc-status, grpc-message, grpc-status-details-bin, "
    "grpc-encoding, grpc-accept-encoding, connect-content-encoding, connect-accept-encoding"
)
# Request headers gRPC-Web and Connect clients send on every call: allowed in a preflight
# whatever server.cors_allow_headers lists, or no browser client of either could call.
RPC_REQUEST_HEADERS = frozenset(
    {
        "connect-protocol-version",
        "connect-timeout-ms",
        "connect-content-encoding",
        "connect-accept-encoding",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "x-grpc-web",
        "x-user-agent",
    }
)


@dataclass(frozen=True)
class CorsPolicy:
    origins: frozenset[str]  # lower-case; "*" allows any
    methods: tuple[str, ...]
    headers: frozenset[str]  # lower-case
    max_age_seconds: int

    @classmethod
    def from_settings(cls, settings) -> CorsPolicy | None:
        """The policy, None when no origin is configured; ValueError naming a bad value's key
        (Settings.validate, which makes the policy once at load, makes it a ConfigError)."""
        origins = _strings("server.cors_allow_origins", settings.cors_allow_origins)
        methods = _strings("server.cors_allow_methods", settings.cors_allow_methods)
        headers = _strings("server.cors_allow_headers", settings.cors_allow_headers)
        for origin in origins:
            if origin != "*" and not _ORIGIN.match(origin.lower()):
                raise ValueError(
                    f"server.cors_allow_origins: {origin!r} is not an origin (scheme://host[:port], "
                    'no path or trailing slash) nor "*"'
                )
        for method in methods:
            if method.upper() not in _METHODS:
                raise ValueError(
                    f"server.cors_allow_methods: {method!r} is not one of {', '.join(sorted(_METHODS))}"
                )
        if settings.cors_max_age_seconds < 0:
            raise ValueError(
                f"server.cors_max_age_seconds: must be at least 0, got {settings.cors_max_age_seconds}"
            )
        if not origins:
            return None
        return cls(
            origins=frozenset(o.lower() for o in origins),
            methods=tuple(dict.fromkeys(m.upper() for m in methods)),
            headers=frozenset(h.lower() for h in headers) | RPC_REQUEST_HEADERS,
            max_age_seconds=settings.cors_max_age_seconds,
        )

    def allows(self, origin: str) -> bool:
        return "*" in self.origins or origin.lower() in self.origins


def with_cors(app, policy: CorsPolicy | None):
    """`app` behind `policy`, or `app` itself when CORS is off (nothing added per request)."""
    return app if policy is None else Cors(app, policy)


class Cors:
    """ASGI middleware applying a CorsPolicy (see the module docstring)."""

    def __init__(self, app, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy
        self._preflight_headers = [
            (b"access-control-allow-methods", ", ".join(policy.methods).encode()),
            (b"access-control-allow-headers", ", ".join(sorted(policy.headers)).encode()),
            (b"access-control-max-age", str(policy.max_age_seconds).encode()),
        ]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if not origin or _same_origin(origin, headers):
            await self.app(scope, receive, send)  # not cross-origin: CORS has nothing to say
            return
        if not self.policy.allows(origin):
            await _refuse(scope, send, f"origin {origin!r} is not in server.cors_allow_origins")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        allow_origin = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        asked_method = headers.get(b"access-control-request-method")
        if scope["method"] == "OPTIONS" and asked_method is not None:
            await self._preflight(scope, send, asked_method.decode("latin-1"), headers, allow_origin)
            return

        async def send_with_cors(message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", ()),
                        *allow_origin,
                        (b"access-control-expose-headers", EXPOSED.encode()),
                    ],
                }
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope, send, method: str, headers: dict, allow_origin: list) -> None:
        if method.upper() not in self.policy.methods:
            await _refuse(scope, send, f"method {method!r} is not in server.cors_allow_methods", allow_origin)
            return
        asked = headers.get(b"access-control-request-headers", b"").decode("latin-1")
        for name in (h.strip().lower() for h in asked.split(",")):
            if name and name not in self.policy.headers:
                await _refuse(
                    scope, send, f"request header {name!r} is not in server.cors_allow_headers", allow_origin
                )
                return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [*allow_origin, *self._preflight_headers],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _same_origin(origin: str, headers: dict) -> bool:
    """The page came from this gateway (its Host): browsers send Origin on same-origin POSTs too."""
    host = headers.get(b"host", b"").decode("latin-1").lower()
    return bool(host) and origin.lower().partition("://")[2] == host


async def _refuse(scope, send, message: str, extra_headers: list | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})  # HTTP 403
        return
    body = json.dumps(status_json(grpc.StatusCode.PERMISSION_DENIED, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": [*headers, *(extra_headers or ())]})
    await send({"type": "http.response.body", "body": body})


def _strings(key: str, value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key}: expected a list of strings, got {value!r}")
    return value
