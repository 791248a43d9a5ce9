"""embedding_values checks a vector exactly as embedding does and gives the same floats."""

from __future__ import annotations

import numpy as np
import pytest

from citadel.server.errors import ApiError
from citadel.server.servicers import validation as check
from citadel.vector.v1 import vector_service_pb2 as pb


def _outcome(fn, values, dimension=8):
    try:
        result = fn("query_vector", values, dimension, "c")
    except ApiError as e:
        return ("error", e.code, e.message)
    return ("ok", [float(x) for x in result])


def _field(values):
    """The repeated float field as the servicer sees it (float32 on the wire)."""
    return pb.SearchVectorsRequest.FromString(
        pb.SearchVectorsRequest(query_vector=values).SerializeToString()
    ).query_vector


@pytest.mark.parametrize(
    "values",
    [
        [0.1, -2.5, 3.0e38, -3.0e38, 1e-45, 0.0, -0.0, 7.25],
        [0.1] * 7,  # wrong dimension
        [0.1] * 9,
        [0.1, float("nan"), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.1, 0.2, float("inf"), 0.0, 0.0, 0.0, 0.0, float("nan")],  # the first bad one is named
        [float("-inf"), 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [float("inf"), float("-inf"), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # the sum is NaN
    ],
)
def test_same_outcome_as_embedding(values):
    field = _field(values)
    assert _outcome(check.embedding_values, field) == _outcome(check.embedding, field)


def test_random_vectors_give_the_same_floats():
    rng = np.random.default_rng(3)
    for _ in range(50):
        field = _field((rng.standard_normal(384) * 10.0 ** rng.integers(-30, 30)).astype(np.float32).tolist())
        assert check.embedding_values("v", field, 384, "c") == check.embedding("v", field, 384, "c").tolist()


def test_the_sum_shortcut_never_refuses_finite_values():
    # Not reachable from a float32 field (its sum cannot overflow), but exact all the same.
    values = [1e308, 1e308, -1.0]
    assert check.embedding_values("v", values, 3, "c") == values
