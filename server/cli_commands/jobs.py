"""`citadel jobs list|get|watch|cancel`."""

from __future__ import annotations

import argparse
import queue
import signal
import sys
import threading

from citadel.client import Client, batch
from citadel.server.cli_commands.common import (
    CommandFailed,
    Exit,
    UsageError,
    add_command,
    add_group,
    enum_name,
    fail,
    print_json,
    table,
    to_json,
    wants_json,
)
from citadel.server.cli_commands.progress import TERMINAL_STATES, JobMeter, Progress, duration

STATES = {enum_name(s): s for s in batch.JobState if s != batch.JobState.UNSPECIFIED}
SHOWN_ERRORS = 5


def register(sub: argparse._SubParsersAction) -> None:
    commands = add_group(sub, "jobs", "list, show, follow and cancel batch jobs")

    listing = add_command(commands, "list", "list jobs, newest first", list_jobs)
    listing.add_argument("--state", choices=sorted(STATES), help="only jobs in this state")
    listing.add_argument("--limit", type=int, default=50, help="most jobs to show (default 50)")

    get = add_command(commands, "get", "show one job with its progress and item errors", get_job)
    get.add_argument("id")

    watch = add_command(commands, "watch", "follow a job to its end with a progress bar", watch_job)
    watch.add_argument("id")
    watch.add_argument("--quiet", "-q", action="store_true", help="no progress output, only the result")

    cancel = add_command(commands, "cancel", "cancel a job: no further chunk of it starts", cancel_job)
    cancel.add_argument("id")


def list_jobs(args: argparse.Namespace, client: Client) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit: must be at least 1, got {args.limit}")
    jobs: list[batch.BatchJob] = []
    token = ""
    state = STATES[args.state] if args.state else batch.JobState.UNSPECIFIED
    while len(jobs) < args.limit:
        page = client.batch.list_batch_jobs(
            batch.ListBatchJobsRequest(
                state=state, page_size=min(args.limit - len(jobs), 1000), page_token=token
            )
        )
        jobs += page.jobs
        token = page.next_page_token
        if not token:
            break
    jobs = jobs[: args.limit]
    if wants_json(args):
        print_json({"jobs": [to_json(j) for j in jobs]})
        return 0
    if not jobs:
        print("no jobs")
        return 0
    rows = [
        [
            j.id,
            enum_name(j.state),
            enum_name(j.operation),
            j.collection or "-",
            f"{j.done:,}/{j.total:,}",
            f"{j.failed:,}",
            j.created_at.strftime("%Y-%m-%d %H:%M:%S") if j.created_at else "",
        ]
        for j in jobs
    ]
    print(table(rows, ["ID", "STATE", "OPERATION", "COLLECTION", "DONE", "FAILED", "CREATED"]))
    return 0


def get_job(args: argparse.Namespace, client: Client) -> int:
    show(args, client.batch.get_batch_job(batch.GetBatchJobRequest(id=args.id)).job)
    return 0


def watch_job(args: argparse.Namespace, client: Client) -> int:
    progress = None if args.quiet else Progress(sys.stderr, live=sys.stderr.isatty())
    return follow_to_end(args, client.with_options(timeout=None), args.id, progress)


def cancel_job(args: argparse.Namespace, client: Client) -> int:
    job = client.batch.cancel_batch_job(batch.CancelBatchJobRequest(id=args.id)).job
    if wants_json(args):
        print_json(to_json(job))
    else:
        print(f"job {job.id}: {enum_name(job.state)} ({job.done:,} of {job.total:,} items written)")
    return 0


def follow_to_end(args: argparse.Namespace, client: Client, job_id: str, progress: Progress | None) -> int:
    """Follows a job to its end, then shows it: exit 0 when every item was written."""
    try:
        job = follow(client, job_id, progress)
    except KeyboardInterrupt:
        raise CommandFailed(
            f"stopped following; job {job_id} keeps running (citadel jobs watch {job_id})", Exit.INTERRUPTED
        ) from None
    show(args, job)
    if job.state != batch.JobState.SUCCEEDED:
        raise CommandFailed(f"job {job.id} ended {enum_name(job.state)}")
    return 0


def show(args: argparse.Namespace, job: batch.BatchJob) -> None:
    if wants_json(args):
        print_json(to_json(job))
    else:
        print(summary(job))


def follow(client: Client, job_id: str, progress: Progress | None) -> batch.BatchJob:
    """Follows WatchBatchJob to the job's final state, drawing progress; returns the last job.

    The stream is read in a thread and handed over through a queue, so Ctrl-C lands in this
    thread's wait and never inside grpc's own code: interrupted there, a call can be left half
    done and the process aborted (SIGABRT) instead of leaving with 130."""
    meter = JobMeter(progress) if progress is not None else None
    events: queue.Queue = queue.Queue()
    stream = client.batch.watch_batch_job(batch.WatchBatchJobRequest(id=job_id))

    def read() -> None:
        try:
            for event in stream:
                events.put(event)
                if event.job.state in TERMINAL_STATES:
                    break
        except BaseException as e:  # handed to the caller's thread, raised there
            events.put(e)
        finally:
            stream.close()  # cancels the call when left before its end
            events.put(None)

    def leave(signum, frame) -> None:
        # Ctrl-C leaves from here, at once: unwinding an exception through the frames holding the
        # stream let grpc's C core tear a live call down and abort (SIGABRT) now and then.
        if progress is not None:
            progress.close()
        fail(f"stopped following; job {job_id} keeps running (citadel jobs watch {job_id})", Exit.INTERRUPTED)

    threading.Thread(target=read, name="watch-job", daemon=True).start()
    job = None
    previous = signal.signal(signal.SIGINT, leave)
    try:
        while (item := events.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            job = item.job
            if meter is not None:
                meter.update(job)
    finally:
        signal.signal(signal.SIGINT, previous)
        if progress is not None:
            progress.close()
    if job is None:
        raise CommandFailed(f"job {job_id}: the watch stream ended without an event")
    return job


def summary(job: batch.BatchJob) -> str:
    lines = [f"job {job.id}: {enum_name(job.state)}, {job.done:,} of {job.total:,} items written"]
    if job.failed:
        lines[0] += f", {job.failed:,} failed"
    if job.started_at and job.finished_at:
        seconds = (job.finished_at - job.started_at).total_seconds()
        lines[0] += f" in {duration(seconds)}"
        if job.items_per_second > 0:
            lines[0] += f" ({job.items_per_second:,.0f} items/s)"
    shown = job.errors[:SHOWN_ERRORS]
    for error in shown:
        lines.append(f"  {error.item_id or '(no id)'}: {error.message}")
    if job.failed > len(shown):
        lines.append(f"  ... and {job.failed - len(shown):,} more failed items")
    return "\n".join(lines)
