"""Ollama: POST /api/embed with a list of inputs, answered as `{"embeddings": [[...], ...]}`."""

from __future__ import annotations

from typing import Any

import numpy as np

from citadel.server.models.providers.base import BackendError, as_matrix
from citadel.server.models.providers.http import HttpProvider

KEEP_ALIVE = "10m"  # keep the model loaded between requests


class OllamaProvider(HttpProvider):
    path = "/api/embed"

    def body(self, texts: list[str]) -> dict[str, Any]:
        return {"model": self.spec.model, "input": texts, "truncate": True, "keep_alive": KEEP_ALIVE}

    def parse(self, answer: Any, count: int) -> np.ndarray:
        if not isinstance(answer, dict) or "embeddings" not in answer:
            raise BackendError(f"{self.where}: answer has no 'embeddings'")
        return as_matrix(answer["embeddings"], count, self.where)
