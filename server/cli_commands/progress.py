"""Progress of an upload or a batch job: a live bar redrawn in place on a terminal, plain lines
(at most one every `interval` seconds, and always the last) anywhere else."""

from __future__ import annotations

import time
from typing import TextIO

from citadel.client import batch

BAR_WIDTH = 30
TERMINAL_STATES = {
    batch.JobState.SUCCEEDED,
    batch.JobState.FAILED,
    batch.JobState.CANCELLED,
    batch.JobState.PARTIALLY_FAILED,
}


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def size(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("KB", "MB"):
        n /= 1000
        if n < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} GB"


def bar(fraction: float) -> str:
    filled = int(round(BAR_WIDTH * min(max(fraction, 0.0), 1.0)))
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"


class Progress:
    def __init__(self, stream: TextIO, live: bool, interval: float = 1.0) -> None:
        self.stream = stream
        self.live = live
        self.interval = interval
        self._last_print = float("-inf")
        self._last_line = ""
        self._drawn = False

    def show(self, line: str, final: bool = False) -> None:
        if self.live:
            self.stream.write("\r\x1b[K" + line + ("\n" if final else ""))
            self.stream.flush()
            self._drawn = not final
            return
        now = time.monotonic()
        if line != self._last_line and (final or now - self._last_print >= self.interval):
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_print = now
            self._last_line = line

    def message(self, text: str) -> None:
        """A line of its own, below a live bar if one is drawn."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class UploadMeter:
    """Bytes of the input file read and items sent, with their rate."""

    def __init__(self, progress: Progress, total_bytes: int) -> None:
        self.progress = progress
        self.total_bytes = total_bytes
        self.started = time.monotonic()

    def update(self, bytes_read: int, items: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        fraction = bytes_read / self.total_bytes if self.total_bytes else 1.0
        eta = (elapsed / fraction - elapsed) if 0 < fraction < 1 else 0.0
        self.progress.show(
            f"uploading {bar(fraction)} {fraction:4.0%}  {size(bytes_read)}/{size(self.total_bytes)}  "
            f"{items:,} items  {items / elapsed:,.0f} items/s  ETA {duration(eta)}"
        )

    def finish(self, bytes_read: int, items: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.progress.show(
            f"uploaded {size(bytes_read)}: {items:,} items in {elapsed:.1f} s ({items / elapsed:,.0f} items/s)",
            final=True,
        )


class JobMeter:
    """A job's done/total with rate and ETA: the server's figures, or measured here while the
    server has none yet."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._first: tuple[float, int] | None = None

    def update(self, job: batch.BatchJob) -> None:
        now = time.monotonic()
        processed = job.done + job.failed
        if self._first is None and job.state == batch.JobState.RUNNING:
            self._first = (now, processed)
        rate = job.items_per_second
        if rate <= 0 and self._first is not None and now > self._first[0]:
            rate = (processed - self._first[1]) / (now - self._first[0])
        eta = job.eta_seconds
        if eta <= 0 and rate > 0 and job.total > processed:
            eta = (job.total - processed) / rate
        fraction = processed / job.total if job.total else 0.0
        state = (job.state.name or "").lower()
        failed = f"  {job.failed:,} failed" if job.failed else ""
        final = job.state in TERMINAL_STATES
        rate_text = f"{rate:,.0f} items/s" if rate > 0 else "-- items/s"
        eta_text = "done" if final else (f"ETA {duration(eta)}" if eta > 0 else "ETA --")
        self.progress.show(
            f"{state:<9} {bar(fraction)} {fraction:4.0%}  {job.done:,}/{job.total:,}{failed}  "
            f"{rate_text}  {eta_text}",
            final,
        )
