"""User ids are arbitrary strings; Qdrant wants unsigned ints or UUIDs.

uuid5 maps each string to one UUID deterministically, so the same user id always lands on
the same point (upserts replace, redeliveries never duplicate). The original id is kept in
the payload, because a UUID cannot be turned back into it.
"""

from __future__ import annotations

import hashlib
import uuid

from citadel.server import page_tokens

_NAMESPACE = uuid.UUID("6f1c3a52-8c1e-5b0e-9d57-4c0a7e3c1d2a")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def point_id(user_id: str) -> str:
    """uuid5(_NAMESPACE, user_id) as a string, computed as uuid.uuid5 does but without building
    a UUID object to format: ~3 µs against ~12 µs, paid for every point written."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + user_id.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def point_from_token(token: str) -> str:
    """The point id a scroll page token resumes from (stores page by point id)."""
    try:
        return str(uuid.UUID(page_tokens.decode(token)))
    except ValueError:
        raise page_tokens.bad_token() from None
