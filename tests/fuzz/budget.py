"""The fuzz suite's size and randomness: by default bounded and derandomized (about two minutes
on two cores, the same examples every run, so CI cannot flake on a new draw). For a longer hunt
by hand:

    CITADEL_FUZZ_SCALE=20 CITADEL_FUZZ_RANDOM=1 .venv/bin/python -m pytest tests/fuzz
"""

from __future__ import annotations

import os

SCALE = float(os.environ.get("CITADEL_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("CITADEL_FUZZ_RANDOM", "") not in ("", "0")


def examples(default: int) -> int:
    """Examples per operation or RPC: `default`, times CITADEL_FUZZ_SCALE."""
    return max(1, round(default * SCALE))
