"""BM25 keyword vectors: computed by the gateway, so both engines hold the same sparse vectors.

Every collection that keeps text (and was created since keyword search exists: its spec's
`keywords`) has a named sparse vector `bm25` with Qdrant's IDF modifier: a point's entry
holds its text's term frequencies, saturated and length-normalised (k 1.2, b 0.75, average
length 256 tokens: qdrant-edge's Bm25 defaults), and the engine weighs each query term by
its inverse document frequency over the collection when it scores. Tokens: words split on
non-alphanumeric characters, lowercased, ASCII-folded (café = cafe), English stopwords
dropped, Snowball English stemming (running = run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import qdrant_edge

from citadel.server.errors import ApiError
from citadel.server.store.base import Point

SPARSE = "bm25"  # the sparse vector's name in both engines
# The stored text, for full-text conditions (TextMatchCondition): a text index on it.
TEXT_FIELD = "_citadel.text"

_MODEL = qdrant_edge.Bm25(qdrant_edge.Bm25Config(ascii_folding=True))


def document(text: str) -> tuple[list[int], list[float]]:
    """A stored text's sparse vector: (token ids, weights)."""
    v = _MODEL.embed_document(text)
    return list(v.indices), list(v.values)


def query(text: str) -> tuple[list[int], list[float]]:
    """A query's sparse vector: each distinct token once, weight 1 (the engine adds IDF)."""
    v = _MODEL.embed_query(text)
    return list(v.indices), list(v.values)


def point_vectors(p: Point, keywords: bool, sparse: Callable[[list[int], list[float]], Any]):
    """A point's vectors as both engines take them: the dense list, or in a collection that
    keeps keywords a dict of it (named "") and its text's BM25 vector, made by the engine's
    own sparse vector class `sparse(indices, values)`."""
    dense = p.vector
    if type(dense) is not list:  # the servicer's float32 array, made a list one slice at a time
        dense = dense.tolist() if isinstance(dense, np.ndarray) else list(dense or ())
    if not keywords:
        return dense
    if not p.text:
        return {"": dense}
    return {"": dense, SPARSE: sparse(*document(p.text))}


def no_keywords(collection: str) -> ApiError:
    """The refusal of keyword search in a collection made without keyword vectors."""
    return ApiError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"collection {collection!r} keeps no keyword (BM25) vectors: it keeps no text, or was made "
        "before keyword search; re-embed it (BatchService.SubmitBatchJob, OPERATION_REEMBED, with its "
        "own model) to build them",
    )
