"""What every provider promises, and the two ways a backend call can fail."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Provider(Protocol):
    # Providers with the same probe_key are one model instance, so one health probe a round
    # answers for all their backends (the in-process model behind all nine seed models would
    # otherwise embed the probe nine times every interval). None: probe each backend.
    probe_key: str | None

    async def embed(self, texts: list[str], timeout: float) -> np.ndarray:
        """float32 (len(texts), d), rows in input order; raises BackendError or InputRejected."""

    async def close(self) -> None: ...


class BackendError(Exception):
    """The backend failed this call (down, overloaded, timed out, answered nonsense): another
    replica, or the same one later, may succeed. `retry_after` is the server's own hint."""

    def __init__(self, message: str, retry_after: float | None = None, counts_as_failure: bool = True):
        super().__init__(message)
        self.retry_after = retry_after
        # 429 asks us to slow down: back off, but it says nothing about the backend's health.
        self.counts_as_failure = counts_as_failure


class InputRejected(Exception):
    """The backend refused the input itself (HTTP 413/422/400): final, no replica would differ."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def as_matrix(rows, count: int, what: str) -> np.ndarray:
    """A provider's rows as float32 (count, d); BackendError when the answer does not fit."""
    if not isinstance(rows, list) or len(rows) != count:
        got = len(rows) if isinstance(rows, list) else type(rows).__name__
        raise BackendError(f"{what}: expected {count} embeddings, got {got}")
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise BackendError(f"{what}: embeddings are not lists of numbers of one length") from None
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise BackendError(f"{what}: embeddings are not lists of numbers of one length")
    if not np.isfinite(matrix).all():
        raise BackendError(f"{what}: embeddings hold NaN or infinity")
    return matrix
