"""The deadline of the call being served, for code far below the servicer that has no `Call`.

The errors interceptor (interceptors/errors.py) enforces each call's deadline around its
handler and records it here for the handler's task. A dependency's client (the Qdrant store's
retries, store/qdrant_calls.py) reads it to stop retrying in time to answer UNAVAILABLE itself,
rather than be cut off by the deadline with nothing said about why.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

# time.monotonic() by which the current call must end; None: no deadline (or no call: a
# batch worker, start-up).
CURRENT: ContextVar[float | None] = ContextVar("citadel_call_deadline", default=None)


def remaining() -> float | None:
    """Seconds left to the current call's deadline, or None when it has none."""
    deadline = CURRENT.get()
    return None if deadline is None else deadline - time.monotonic()
