"""text-embeddings-inference: POST /embed with `inputs`, answered as a bare list of vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from citadel.server.models.providers.base import as_matrix
from citadel.server.models.providers.http import HttpProvider


class TeiProvider(HttpProvider):
    path = "/embed"

    def body(self, texts: list[str]) -> dict[str, Any]:
        # TEI serves one model per server, so the model name is not sent.
        return {"inputs": texts, "truncate": True}

    def parse(self, answer: Any, count: int) -> np.ndarray:
        return as_matrix(answer, count, self.where)
