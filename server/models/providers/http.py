"""The HTTP transport the ollama, openai and tei providers share: a pooled httpx client with
timeouts, and one mapping from HTTP outcomes to BackendError / InputRejected.

- 413, 422 and 400 reject the input: final.
- 429 and 503 are retried, honouring Retry-After; 429 is not held against the backend's health.
- Other 5xx, 404 (model not on that server), connection errors and timeouts fail the backend.

Credentials come from the backend's `api_key_env` / `api_key_file` / `headers` (read here, once)
or the URL's userinfo (httpx sends it as basic auth); errors show the URL redacted, and an
exception's own text (httpx may embed the URL) is redacted too.
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from citadel.server.models.catalog import BackendSpec
from citadel.server.models.providers.base import BackendError, InputRejected
from citadel.server.redaction import redact_text

# httpx logs every request at INFO with its full URL, userinfo included (and httpcore its
# connections at DEBUG): a line per embedding call, carrying the credentials. Warnings stay.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

FINAL_STATUSES = (400, 413, 422)
CONNECT_TIMEOUT_SECONDS = 2.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass  # not delta-seconds: try the HTTP-date form
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body.get("message", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:200]
    return str(body)[:200]


def credential_headers(spec: BackendSpec) -> dict[str, str]:
    """The backend's configured headers with their secrets read (the catalog checked that each
    variable is set and each file readable)."""

    def read(source: str, ref: str) -> str:
        if source == "env":
            return os.environ[ref]
        if source == "file":
            return Path(ref).read_text().strip()
        return ref

    headers = {name: read(source, ref) for name, source, ref in spec.headers}
    if spec.api_key_env:
        headers["authorization"] = f"Bearer {read('env', spec.api_key_env)}"
    elif spec.api_key_file:
        headers["authorization"] = f"Bearer {read('file', spec.api_key_file)}"
    return headers


class HttpProvider:
    """Subclasses name the path and translate the request and answer bodies."""

    path = ""
    probe_key: str | None = None  # every backend is its own server: probe each one

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        self.where = f"{spec.provider} {spec.shown_url}"  # names the backend in errors, no secrets
        self._client = httpx.AsyncClient(
            base_url=spec.url,
            headers=credential_headers(spec),
            timeout=httpx.Timeout(spec.timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS),
            limits=httpx.Limits(
                max_connections=spec.max_concurrency + 2,  # + the health probe
                max_keepalive_connections=spec.max_concurrency + 2,
            ),
        )

    def body(self, texts: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, answer: Any, count: int) -> np.ndarray:
        raise NotImplementedError

    async def embed(self, texts: list[str], timeout: float) -> np.ndarray:
        where = f"{self.where}{self.path}"
        seconds = max(0.001, min(timeout, self.spec.timeout_seconds))
        try:
            response = await self._client.post(
                self.path,
                json=self.body(texts),
                timeout=httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_SECONDS)),
            )
        except httpx.TimeoutException:
            raise BackendError(f"{where}: no answer within {seconds:.3g} s") from None
        except httpx.HTTPError as e:
            problem = redact_text(str(e)) or "connection failed"
            raise BackendError(f"{where}: {type(e).__name__}: {problem}") from None
        status = response.status_code
        if status in FINAL_STATUSES:
            raise InputRejected(status, _detail(response))
        if status in (429, 503):
            raise BackendError(
                f"{where}: HTTP {status}: {_detail(response)}",
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
                counts_as_failure=status != 429,
            )
        if status != 200:
            raise BackendError(f"{where}: HTTP {status}: {_detail(response)}")
        try:
            answer = response.json()
        except ValueError:
            raise BackendError(f"{where}: answer is not JSON") from None
        return self.parse(answer, len(texts))

    async def close(self) -> None:
        await self._client.aclose()
