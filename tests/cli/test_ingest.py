"""`citadel ingest FILE` end to end: a JSONL or CSV file streamed into a batch job with its
progress output captured, then the collection read back through the SDK."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys

from citadel.client import batch, vector
from tests.cli.conftest import unique
from tests.jobs.conftest import TOPICS, text_of


def count(sdk, name: str) -> int:
    return sdk.vector.count_vectors(vector.CountVectorsRequest(collection=name)).count


def stored(sdk, name: str, vector_id: str) -> vector.Vector:
    return sdk.vector.get_vector(vector.GetVectorRequest(collection=name, id=vector_id)).vector


def write_jsonl(path, n: int) -> None:
    with open(path, "w") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {
                        "id": f"doc-{i}",
                        "text": text_of(i),
                        "topic": TOPICS[i % len(TOPICS)],
                        "metadata": {"n": i},
                    }
                )
                + "\n"
            )
            if i % 97 == 0:
                f.write("\n")  # blank lines are skipped


def test_ingest_jsonl_embeds_texts_with_progress(cli, sdk, tmp_path):
    name = unique("ingest")
    assert cli("collections", "create", name, "--dimension", "384", "--index", "topic:keyword").code == 0
    path = tmp_path / "notes.jsonl"
    write_jsonl(path, 400)

    result = cli("ingest", str(path), "--collection", name, "--chunk-size", "64")
    assert result.code == 0, result.err
    progress = result.err.splitlines()
    # Not a terminal: plain lines, no carriage returns or escape sequences.
    assert "\r" not in result.err and "\x1b" not in result.err
    assert re.fullmatch(r"uploading \[[#.]{30}\] +\d+%  .+ items/s  ETA \d+:\d\d", progress[0])
    uploaded = next(line for line in progress if line.startswith("uploaded "))
    assert re.fullmatch(r"uploaded [\d.]+ KB: 400 items in [\d.]+ s \([\d,]+ items/s\)", uploaded)
    queued = next(line for line in progress if line.startswith("job "))
    job_id = re.fullmatch(rf"job (\w+) queued: 400 items into {name}", queued).group(1)
    assert re.fullmatch(r"succeeded \[#{30}\] 100%  400/400  [\d,]+ items/s  done", progress[-1])
    for line in progress[progress.index(queued) + 1 : -1]:  # intermediate watch lines, if any
        assert re.fullmatch(r"(queued|running) +\[[#.]{30}\] +\d+%  [\d,]+/400  .+ items/s  ETA .+", line)
    assert result.out.strip().startswith(f"job {job_id}: succeeded, 400 of 400 items written")

    assert count(sdk, name) == 400
    v = stored(sdk, name, "doc-7")
    assert len(v.embedding) == 384
    assert v.metadata.to_dict() == {"n": 7.0, "topic": TOPICS[7]}
    hits = sdk.vector.search_vectors(
        vector.SearchVectorsRequest(collection=name, query_text=text_of(123), limit=1)
    ).results
    assert hits[0].id == "doc-123"
    job = sdk.batch.get_batch_job(batch.GetBatchJobRequest(id=job_id)).job
    assert (job.operation, job.state, job.total, job.done) == (
        batch.Operation.BULK_EMBED_UPSERT,
        batch.JobState.SUCCEEDED,
        400,
        400,
    )


def test_ingest_csv_upserts_embeddings(cli, sdk, tmp_path):
    name = unique("csv")
    assert cli("collections", "create", name, "--dimension", "4", "--distance", "euclid").code == 0
    path = tmp_path / "points.csv"
    rows = ["id,embedding,genre,metadata"]
    for i in range(120):
        rows.append(f'p{i},"[{i}, {i % 7}, 1, 0]",g{i % 3},"{{""year"": {1900 + i}, ""tags"": [""a""]}}"')
    rows.insert(50, ",,,")  # an empty row is skipped
    path.write_text("\r\n".join(rows) + "\r\n")

    result = cli("ingest", str(path), "-c", name, "--chunk-size", "25", "--json")
    assert result.code == 0, result.err
    job = result.json()
    assert job["state"] == "JOB_STATE_SUCCEEDED" and job["operation"] == "OPERATION_BULK_UPSERT"
    assert (job["total"], job["done"], job.get("failed", "0")) == ("120", "120", "0")  # 0: left out
    assert "uploaded " in result.err and "succeeded [" in result.err

    assert count(sdk, name) == 120
    v = stored(sdk, name, "p12")
    assert v.embedding == [12.0, 5.0, 1.0, 0.0]
    assert v.metadata.to_dict() == {"genre": "g0", "year": 1912.0, "tags": ["a"]}
    nearest = sdk.vector.search_vectors(
        vector.SearchVectorsRequest(collection=name, query_vector=[40, 5, 1, 0], limit=1)
    ).results[0]
    assert nearest.id == "p40"


def test_ingest_live_progress_bar_on_a_terminal(gateway, sdk, tmp_path):
    name = unique("tty")
    sdk.vector.create_collection(
        vector.CreateCollectionRequest(
            collection=vector.Collection(name=name, dimension=384, distance=vector.Distance.COSINE)
        )
    )
    path = tmp_path / "notes.jsonl"
    write_jsonl(path, 300)
    main, secondary = pty.openpty()
    env = {**os.environ, "CITADEL_TARGET": gateway.grpc_target}
    proc = subprocess.Popen(
        [sys.executable, "-m", "citadel.server.cli", "ingest", str(path), "-c", name, "--chunk-size", "30"],
        stdout=subprocess.PIPE,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    screen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the process closed its end
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    out = proc.communicate(timeout=120)[0].decode()
    os.close(main)
    assert proc.returncode == 0, screen.decode(errors="replace")
    text = screen.decode()
    # The bar is redrawn in place: each frame starts with a carriage return and erase-line.
    frames = [f for f in text.replace("\r\n", "\n").split("\r\x1b[K") if f]
    assert len([f for f in frames if f.startswith("uploading [")]) >= 2
    assert any(f.startswith("uploaded ") and "300 items" in f for f in frames)
    assert re.search(r"succeeded \[#{30}\] 100%  300/300  [\d,]+ items/s  done\r?\n", text)
    assert out.startswith("job ") and "succeeded, 300 of 300 items written" in out
    assert count(sdk, name) == 300


def test_ingest_reports_failed_items(cli, sdk, tmp_path):
    name = unique("partial")
    assert cli("collections", "create", name, "--dimension", "3").code == 0
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "good-1", "embedding": [1, 0, 0]},
                {"id": "short", "embedding": [1, 0]},
                {"id": "none"},
                {"id": "good-2", "embedding": [0, 1, 0]},
            ]
        )
    )
    result = cli("ingest", str(path), "-c", name)
    assert result.code == 1
    assert "partially_failed, 2 of 4 items written, 2 failed" in result.out
    assert "  short: embedding: has 2 values" in result.out
    assert "  none: embedding: is required" in result.out
    assert result.err.strip().endswith("ended partially_failed")
    assert count(sdk, name) == 2


def test_ingest_no_wait_then_watch(cli, sdk, tmp_path):
    name = unique("nowait")
    assert cli("collections", "create", name, "--dimension", "384").code == 0
    path = tmp_path / "notes.ndjson"
    write_jsonl(path, 150)
    queued = cli("ingest", str(path), "-c", name, "--no-wait", "--quiet", "--idempotency-key", name)
    assert queued.code == 0, queued.err
    assert queued.err == ""
    job_id = queued.out.strip()
    watched = cli("jobs", "watch", job_id)
    assert watched.code == 0, watched.err
    assert watched.out.startswith(f"job {job_id}: succeeded, 150 of 150 items written")
    assert watched.err.splitlines()[-1].startswith("succeeded [")
    again = cli("ingest", str(path), "-c", name, "--idempotency-key", name, "--no-wait", "--json")
    assert again.json()["existing"] is True and again.json()["job"]["id"] == job_id
    assert "matched an existing job" in again.err
    assert count(sdk, name) == 150


def test_ingest_bad_input_stops_before_any_job(cli, sdk, tmp_path):
    name = unique("bad")
    assert cli("collections", "create", name, "--dimension", "3").code == 0
    cases = {
        "broken.jsonl": (
            '{"id": "a", "embedding": [1, 0, 0]}\n{"id": "b", "embed',
            "broken.jsonl:2: not valid JSON",
        ),
        "array.jsonl": ("[1, 2]\n", "array.jsonl:1: expected a JSON object, got list"),
        "noid.jsonl": ('{"text": "x"}\n', "noid.jsonl:1: id: is required"),
        "nan.jsonl": (
            '{"id": "a", "embedding": [1, NaN, 0]}\n',
            "nan.jsonl:1: embedding: expected an array of finite numbers",
        ),
        "meta.jsonl": (
            '{"id": "a", "text": "x", "metadata": [1]}\n',
            "meta.jsonl:1: metadata: expected a JSON object",
        ),
        "noid.csv": ("name,text\na,b\n", "noid.csv:1: the header has no 'id' column"),
        "ragged.csv": ("id,text\na,b\nc,d,e\n", "ragged.csv:3: has 3 fields, the header has 2"),
        "badvec.csv": ('id,embedding\na,"[1, 0"\n', "badvec.csv:2: embedding: not valid JSON"),
        "empty.jsonl": ("\n\n", "empty.jsonl: holds no records"),
        "notes.txt": ("{}", "cannot tell the format from the name"),
    }
    for file_name, (content, message) in cases.items():
        path = tmp_path / file_name
        path.write_text(content)
        result = cli("ingest", str(path), "-c", name)
        assert result.code == 2, (file_name, result.err)
        assert message in result.err, (file_name, result.err)
    missing = cli("ingest", str(tmp_path / "absent.jsonl"), "-c", name)
    assert missing.code == 2 and "absent.jsonl: No such file or directory" in missing.err
    assert cli("ingest", str(tmp_path / "noid.jsonl"), "-c", name, "--chunk-size", "0").code == 2
    jobs = sdk.batch.list_batch_jobs(batch.ListBatchJobsRequest(page_size=1000)).jobs
    assert [j.id for j in jobs if j.collection == name] == []
    assert count(sdk, name) == 0


def test_ingest_into_missing_collection_fails_before_uploading(cli, tmp_path):
    path = tmp_path / "notes.jsonl"
    write_jsonl(path, 10)
    result = cli("ingest", str(path), "-c", "no-such-collection")
    assert result.code == 3
    assert result.err.strip() == "citadel: NOT_FOUND: collection 'no-such-collection' not found"
    assert "uploading" not in result.err
