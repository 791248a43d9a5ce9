"""Helper processes the gateway starts (index builds, large-body decoding) end with it.

A gateway killed with SIGKILL runs no clean-up, so a child must notice on its own: on Linux
the kernel sends it SIGKILL when its parent dies (PR_SET_PDEATHSIG), and a parent that died
before the request took effect is caught by comparing the parent pid it was given.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """In a child process: end when the process `parent` ends, however it ends."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            print(f"prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}", file=sys.stderr)
    if os.getppid() != parent:  # it died before the request above took effect
        os._exit(1)
