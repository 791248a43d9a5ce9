"""The process's own resource limits: open files raised to what the system allows at start,
and an exhausted resource (open files, disk space) told apart from a bug (errors interceptor).

The embedded engine holds a few files open per collection (a shard each), so a soft limit of
1,024, common for services and shells, ran out near a thousand collections; the hard limit is
usually far higher and a process may raise its soft limit up to it.
"""

from __future__ import annotations

import errno
import logging
import resource

log = logging.getLogger("citadel")

# What ran out, by the errno Python gives and by the words the engine's (Rust) errors carry:
# "Too many open files (os error 24)", or a debug form "Os { code: 24, kind: TooManyOpenFiles }".
# Not the caller's mistake and not a bug: the errors interceptor answers UNAVAILABLE naming it.
_EXHAUSTED = {
    errno.ENFILE: "open files (the system's limit)",
    errno.EMFILE: "open files (the process's limit, `ulimit -n`)",
    errno.ENOSPC: "disk space",
}
_WORDS = {
    errno.ENFILE: ("(os error 23)", "code: 23, kind:", "Too many open files in system"),
    errno.EMFILE: ("(os error 24)", "code: 24, kind:", "TooManyOpenFiles", "Too many open files"),
    errno.ENOSPC: ("(os error 28)", "code: 28, kind:", "StorageFull", "No space left on device"),
}


def raise_open_files_limit() -> int:
    """Raises the soft limit on open files to the hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("open files limit stays %d (could not raise it to %d: %s)", soft, target, e)
    return soft


def exhausted_resource(error: BaseException) -> str | None:
    """What ran out, when `error` says a resource of this machine is exhausted; else None."""
    number = getattr(error, "errno", None)
    if number in _EXHAUSTED:
        return _EXHAUSTED[number]
    text = str(error)
    for number, words in _WORDS.items():
        if any(w in text for w in words):
            return _EXHAUSTED[number]
    return None


def open_files_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
