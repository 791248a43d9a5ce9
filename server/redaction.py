"""URLs as they may be shown: in replies, status, errors and logs.

A configured URL may carry credentials (`http://user:pass@host`, `?api_key=...`). Whatever shows
or logs a URL, or an exception text that may embed one (httpx, redis, qdrant-client do), passes
it through here first: the userinfo and every query value become `***`, the fragment is dropped.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

MASK = "***"
# A URL inside free text: scheme://, then everything up to whitespace or a closing quote/bracket.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>()\[\]{}]+")


def redact_url(url: str) -> str:
    """`url` without secrets: `http://***@host/p?key=***`; unparseable text is masked whole
    after its scheme rather than shown."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port, like other bad URLs
    except ValueError:
        scheme, sep, _ = url.partition("://")
        return f"{scheme}{sep}{MASK}" if sep else MASK
    netloc = parts.netloc
    if "@" in netloc:
        # The whole userinfo: a token is often sent as the user name alone (https://TOKEN@host).
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        query = urlencode([(name, MASK) for name, _ in parse_qsl(query, keep_blank_values=True)], safe="*")
    return SplitResult(parts.scheme, netloc, parts.path, query, "").geturl()


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (an exception's message, a backend's last error)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
