"""User ids are arbitrary strings; Qdrant wants unsigned ints or UUIDs.

uuid5 maps each string to one UUID deterministically, so the same user id always lands on
the same point (upserts replace, redeliveries never duplicate). The original id is kept in
the payload, because a UUID cannot be turned back into it.
"""

from __future__ import annotations

import uuid

from citadel.server import page_tokens

_NAMESPACE = uuid.UUID("6f1c3a52-8c1e-5b0e-9d57-4c0a7e3c1d2a")


def point_id(user_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, user_id))


def point_from_token(token: str) -> str:
    """The point id a scroll page token resumes from (stores page by point id)."""
    try:
        return str(uuid.UUID(page_tokens.decode(token)))
    except ValueError:
        raise page_tokens.bad_token() from None
