"""Authentication and authorization from each RPC's declared access role.

Credentials arrive as `authorization: Bearer <API key or JWT>` or `x-api-key: <key>`, whatever
the protocol. Missing or invalid credentials are UNAUTHENTICATED; a role below the method's
is PERMISSION_DENIED. Nothing secret is logged or echoed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import grpc

from citadel.server.auth.api_keys import ApiKeyVerifier
from citadel.server.auth.jwt_tokens import JwtVerifier, TokenError
from citadel.server.auth.principal import ANONYMOUS, ROLE_NAMES, Principal
from citadel.server.chain import Call, Handler, Reply
from citadel.server.errors import ApiError
from citadel.server.methods import MethodSpec
from citadel.server.metrics import Metrics

log = logging.getLogger("citadel.auth")


def unauthenticated(reason: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, reason)


class AuthInterceptor:
    # The chain resolves pending requests (unread bodies, undecoded bytes) just inside this one.
    admits_callers = True

    def __init__(self, api_keys: ApiKeyVerifier | None, jwt: JwtVerifier | None, metrics: Metrics) -> None:
        self._keys = api_keys
        self._jwt = jwt
        self._metrics = metrics

    @classmethod
    def disabled(cls, metrics: Metrics) -> AuthInterceptor:
        return cls(None, None, metrics)

    @property
    def enabled(self) -> bool:
        return self._keys is not None or self._jwt is not None

    def for_method(self, spec: MethodSpec):
        """With authentication off every caller is ANONYMOUS, an admin, whom every role
        admits: the method's calls just get that principal."""
        if self.enabled or not ANONYMOUS.may(spec.access.role):
            return self

        def anonymous(call: Call, request: Any, proceed: Handler) -> Awaitable[Reply]:
            call.state["principal"] = ANONYMOUS
            return proceed(call, request)

        return anonymous

    async def __call__(self, call: Call, request: Any, proceed: Handler) -> Reply:
        # An adapter that authenticated its request up front (Chain.authenticate) passes the
        # principal on: only the method's role is left to check.
        principal = call.state.get("principal") or self.authenticate(call.metadata)
        required = call.method.access.role
        if not principal.may(required):
            self._metrics.auth_failures.labels("role").inc()
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"role {principal.role_name} may not call {call.method.path}: "
                f"it needs {ROLE_NAMES[required]}",
            )
        call.state["principal"] = principal
        return await proceed(call, request)

    def authenticate(self, metadata) -> Principal:
        """The caller from `authorization: Bearer` / `x-api-key` metadata; ANONYMOUS when
        authentication is off. Raises UNAUTHENTICATED (and counts why)."""
        if not self.enabled:
            return ANONYMOUS
        token = _credential(metadata)
        if not token:
            self._metrics.auth_failures.labels("missing").inc()
            raise unauthenticated("missing credentials: send 'authorization: Bearer <API key or JWT>'")
        if ApiKeyVerifier.looks_like_key(token):
            principal = self._keys.verify(token) if self._keys else None
            if principal is None:
                self._metrics.auth_failures.labels("bad_key").inc()
                raise unauthenticated("invalid API key")
            return principal
        if self._jwt is None:
            self._metrics.auth_failures.labels("bad_token").inc()
            raise unauthenticated("bearer token is not an API key and JWTs are not configured")
        try:
            return self._jwt.verify(token)
        except TokenError as e:
            self._metrics.auth_failures.labels("bad_token").inc()
            raise unauthenticated(str(e)) from None


def _credential(metadata) -> str:
    value = metadata.get("authorization", "")
    if value:
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return metadata.get("x-api-key", "").strip()
