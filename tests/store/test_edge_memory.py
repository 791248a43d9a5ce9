"""The embedded engine's processes cap glibc's malloc arenas, unless the operator chose."""

from __future__ import annotations

import ctypes.util
import os
import platform
import subprocess
import sys

import pytest

CAP = "from citadel.server.store.edge_memory import cap_malloc_arenas; print(cap_malloc_arenas())"


def _run(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CAP], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.strip()


@pytest.mark.skipif(
    platform.system() != "Linux"
    or platform.libc_ver()[0] != "glibc"
    or ctypes.util.find_library("c") is None,
    reason="arenas are glibc's",
)
def test_arenas_are_capped_on_glibc_unless_malloc_arena_max_is_set():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True"
    assert _run({**env, "MALLOC_ARENA_MAX": "4"}) == "False"
