"""OpenAI-compatible servers (vLLM, LiteLLM, TEI's OpenAI route, ...): POST /v1/embeddings.

Floats are asked for; base64 answers (little-endian float32) are accepted too, since some
servers send them regardless. Rows come back tagged with `index` and are put in input order.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from citadel.server.models.providers.base import BackendError, as_matrix
from citadel.server.models.providers.http import HttpProvider


class OpenAIProvider(HttpProvider):
    path = "/v1/embeddings"

    def body(self, texts: list[str]) -> dict[str, Any]:
        return {"model": self.spec.model, "input": texts, "encoding_format": "float"}

    def parse(self, answer: Any, count: int) -> np.ndarray:
        where = self.where
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise BackendError(f"{where}: answer has no 'data' list")
        rows: list[Any] = [None] * len(data)
        for position, item in enumerate(data):
            if not isinstance(item, dict) or "embedding" not in item:
                raise BackendError(f"{where}: data[{position}] has no 'embedding'")
            index = item.get("index", position)
            if not isinstance(index, int) or not 0 <= index < len(data) or rows[index] is not None:
                raise BackendError(f"{where}: data[{position}].index {index!r} is out of place")
            rows[index] = _values(item["embedding"], where)
        return as_matrix(rows, count, where)


def _values(embedding: Any, where: str) -> Any:
    if not isinstance(embedding, str):
        return embedding
    try:
        raw = base64.b64decode(embedding, validate=True)
    except (binascii.Error, ValueError):
        raise BackendError(f"{where}: embedding is neither a list nor base64") from None
    if len(raw) % 4:
        raise BackendError(f"{where}: base64 embedding is not whole float32 values")
    return np.frombuffer(raw, dtype="<f4").tolist()
