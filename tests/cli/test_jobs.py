"""`citadel jobs list|get|watch|cancel` against a real gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from citadel.client import batch, vector
from tests.cli.conftest import unique
from tests.jobs.conftest import text_of


def submit(sdk, collection: str, n: int) -> batch.BatchJob:
    items = [batch.BatchItem(id=f"doc-{i}", text=text_of(i)) for i in range(n)]
    return sdk.batch.submit_batch_job(
        batch.SubmitBatchJobRequest(
            collection=collection, operation=batch.Operation.BULK_EMBED_UPSERT, items=items
        )
    ).job


def make_collection(sdk, dimension: int = 384) -> str:
    name = unique("jobs")
    sdk.vector.create_collection(
        vector.CreateCollectionRequest(
            collection=vector.Collection(name=name, dimension=dimension, distance=vector.Distance.COSINE)
        )
    )
    return name


def test_watch_get_and_list(cli, sdk):
    name = make_collection(sdk)
    job = submit(sdk, name, 120)

    watched = cli("jobs", "watch", job.id, "--json")
    assert watched.code == 0, watched.err
    final = watched.json()
    assert (final["id"], final["state"], final["done"], final["total"]) == (
        job.id,
        "JOB_STATE_SUCCEEDED",
        "120",
        "120",
    )
    assert watched.err.splitlines()[-1].startswith("succeeded [##############################] 100%  120/120")

    got = cli("jobs", "get", job.id)
    assert got.code == 0, got.err
    assert got.out.startswith(f"job {job.id}: succeeded, 120 of 120 items written")
    assert cli("jobs", "get", job.id, "--json").json()["collection"] == name

    listed = cli("jobs", "list", "--json")
    assert listed.code == 0, listed.err
    assert job.id in [j["id"] for j in listed.json()["jobs"]]
    table = cli("jobs", "list", "--state", "succeeded").out.splitlines()
    assert table[0].split() == ["ID", "STATE", "OPERATION", "COLLECTION", "DONE", "FAILED", "CREATED"]
    row = next(line.split() for line in table if line.startswith(job.id))
    assert row[1:6] == ["succeeded", "bulk_embed_upsert", name, "120/120", "0"]
    assert job.id not in cli("jobs", "list", "--state", "running").out
    assert len(cli("jobs", "list", "--limit", "1", "--json").json()["jobs"]) == 1


def test_cancel_a_running_job(cli, sdk):
    name = make_collection(sdk)
    job = submit(sdk, name, 3000)
    cancelled = cli("jobs", "cancel", job.id, "--json")
    assert cancelled.code == 0, cancelled.err
    assert cancelled.json()["id"] == job.id

    watched = cli("jobs", "watch", job.id, "--quiet")
    assert watched.code == 1
    assert watched.err == f"citadel: job {job.id} ended cancelled\n"
    assert watched.out.startswith(f"job {job.id}: cancelled, ")
    final = sdk.batch.get_batch_job(batch.GetBatchJobRequest(id=job.id)).job
    assert final.state == batch.JobState.CANCELLED and final.done < 3000
    listed = cli("jobs", "list", "--state", "cancelled", "--json").json()["jobs"]
    assert job.id in [j["id"] for j in listed]
    assert "cancelled" in cli("jobs", "cancel", job.id).out


def test_missing_job_and_bad_flags(cli):
    for command in ("get", "watch", "cancel"):
        result = cli("jobs", command, "0123456789abcdef")
        assert result.code == 3, (command, result.err)
        assert result.err == "citadel: NOT_FOUND: job '0123456789abcdef' not found\n"
    assert cli("jobs", "list", "--state", "sleeping").code == 2
    bad_limit = cli("jobs", "list", "--limit", "0")
    assert bad_limit.code == 2 and "--limit: must be at least 1" in bad_limit.err
    assert cli("jobs").code == 2


def test_interrupted_watch_leaves_the_job_running(gateway, sdk):
    job = submit(sdk, make_collection(sdk), 3000)
    env = {**os.environ, "CITADEL_TARGET": gateway.grpc_target}
    proc = subprocess.Popen(
        [sys.executable, "-m", "citadel.server.cli", "jobs", "watch", job.id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # No preexec_fn: it makes Popen fork this process (which runs grpc) and run Python in the
        # child before exec, and grpc's poller, restarted there, met its closed epoll fd and
        # aborted the child (SIGABRT) now and then. `jobs watch` sets its own SIGINT handler.
    )
    try:
        deadline = time.monotonic() + 30
        while sdk.batch.get_batch_job(batch.GetBatchJobRequest(id=job.id)).job.done == 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)  # well inside the watch loop
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err.splitlines()[-1] == (
            f"citadel: stopped following; job {job.id} keeps running (citadel jobs watch {job.id})"
        )
        assert sdk.batch.get_batch_job(batch.GetBatchJobRequest(id=job.id)).job.state in (
            batch.JobState.RUNNING,
            batch.JobState.SUCCEEDED,
        )
    finally:
        proc.kill()
        sdk.batch.cancel_batch_job(batch.CancelBatchJobRequest(id=job.id))
