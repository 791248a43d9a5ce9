"""Opaque page tokens: the resume position, URL-safe base64 encoded.

Callers must treat them as opaque; decoding anything else is INVALID_ARGUMENT on page_token.
"""

from __future__ import annotations

import base64
import binascii

from citadel.server.errors import invalid

_BAD = "not a token from a previous response"


def encode(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode(token: str, field: str = "page_token") -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(field, _BAD) from None


def bad_token(field: str = "page_token"):
    return invalid(field, _BAD)
