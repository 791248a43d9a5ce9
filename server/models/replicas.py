"""Replica guard: every backend of one model must give the same embedding for the same text.

After each round of health probes the probe vectors are compared. Two backends agree when
their vectors have the same dimension, are both L2-normalised or both not, and point the same
way (cosine ≥ `min_cosine`: int8 and float builds of one model stay above 0.99; different models
are far below). The largest group that agrees (ties: the group of the backend listed first)
is the model; every other backend is kept out of rotation and reported in ListModels. When the
model's dimensions are configured, only backends with that dimension can form the group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NORM_TOLERANCE = 1e-2


@dataclass(frozen=True)
class Verdict:
    dimension: int  # the model's dimension by the agreeing group (0: nobody answered)
    problems: dict[str, str]  # backend id -> why it disagrees; agreeing backends map to ""


def _normalised(v: np.ndarray) -> bool:
    return abs(float(np.linalg.norm(v)) - 1.0) <= NORM_TOLERANCE


def disagreement(a: np.ndarray, b: np.ndarray, min_cosine: float) -> str:
    """Why vector `a` does not match reference `b`, or '' when it does."""
    if a.shape != b.shape:
        return f"dimension {a.shape[0]} differs from {b.shape[0]}"
    if _normalised(a) != _normalised(b):
        return "normalised" if _normalised(a) else f"not normalised (norm {np.linalg.norm(a):.3f})"
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
    cosine = float(np.dot(a, b)) / denominator
    if cosine < min_cosine:
        return f"probe vector differs (cosine {cosine:.3f} < {min_cosine})"
    return ""


def judge(probes: Sequence[tuple[str, np.ndarray]], expected_dimension: int, min_cosine: float) -> Verdict:
    """`probes` are (backend id, probe vector) in configuration order."""
    problems: dict[str, str] = {}
    eligible = []
    for backend_id, vector in probes:
        if expected_dimension and vector.shape[0] != expected_dimension:
            problems[backend_id] = (
                f"replica guard: dimension {vector.shape[0]} differs from the model's {expected_dimension}"
            )
        else:
            eligible.append((backend_id, vector))
    best: list[str] = []
    reference_id = ""
    for backend_id, vector in eligible:
        group = [other for other, v in eligible if not disagreement(v, vector, min_cosine)]
        if len(group) > len(best):
            best, reference_id = group, backend_id
    if not best:
        return Verdict(expected_dimension, problems)
    reference = dict(eligible)[reference_id]
    for backend_id, vector in eligible:
        if backend_id in best:
            problems[backend_id] = ""
        else:
            why = disagreement(vector, reference, min_cosine)
            problems[backend_id] = f"replica guard: {why} (reference backend {reference_id!r})"
    return Verdict(expected_dimension or int(reference.shape[0]), problems)
