"""REST bodies over 1 MiB are decoded in a child process: same results and same errors as the
in-process path, the child dies with the gateway, and a dead child is replaced."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import orjson

from citadel.adapters.decoder_process import CHILD_DECODE_BYTES

COUNT = 40_000  # ~1.5 MB of JSON: over CHILD_DECODE_BYTES


def _collection(http: httpx.Client) -> str:
    name = f"big-{uuid.uuid4().hex[:8]}"
    created = http.post("/v1/collections", json={"name": name, "dimension": 2, "distance": "DISTANCE_EUCLID"})
    assert created.status_code == 200, created.text
    return name


def _upsert_body(count: int = COUNT, bad_at: int | None = None) -> bytes:
    vectors = [{"id": f"v{i}", "embedding": [1.0, float(i % 7)]} for i in range(count)]
    if bad_at is not None:
        vectors[bad_at]["embedding"] = [1.0, "two"]
    body = orjson.dumps({"vectors": vectors})
    assert len(body) > CHILD_DECODE_BYTES
    return body


def _decoder_children(gateway_pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if (
            fields.get("PPid", "").strip() == str(gateway_pid) and b"spawn_main" in cmdline
        ):  # not the resource tracker
            found.append(int(status.parent.name))
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in state


def test_large_bodies_decode_in_a_child_with_the_same_results_and_errors(fresh_gateway):
    with httpx.Client(base_url=fresh_gateway.http_url, timeout=120) as http:
        name = _collection(http)
        written = http.post(f"/v1/collections/{name}/vectors:upsert", content=_upsert_body())
        assert written.status_code == 200 and written.json() == {"upsertedCount": COUNT}, written.text
        got = http.get(f"/v1/collections/{name}/vectors/v39999").json()["vector"]
        assert got["embedding"] == [1.0, float(39999 % 7)]

        bad = http.post(f"/v1/collections/{name}/vectors:upsert", content=_upsert_body(bad_at=31_000))
        assert bad.status_code == 400
        assert bad.json()["message"].startswith("vectors[31000].embedding[1]"), bad.json()
        small = http.post(
            f"/v1/collections/{name}/vectors:upsert",
            json={"vectors": [{"id": "x", "embedding": [1.0, "two"]}]},
        )
        # The same words as the in-process decoder, index aside.
        assert small.json()["message"].split(":", 1)[1] == bad.json()["message"].split(":", 1)[1]

        children = _decoder_children(fresh_gateway.proc.pid)
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        again = http.post(f"/v1/collections/{name}/vectors:upsert", content=_upsert_body())
        assert again.status_code == 200, again.text  # decoded in a thread this once
        assert http.post(f"/v1/collections/{name}/vectors:upsert", content=_upsert_body()).status_code == 200
        children = _decoder_children(fresh_gateway.proc.pid)
        assert len(children) == 1, children  # a new child

    fresh_gateway.proc.kill()  # SIGKILL: no clean-up runs in the gateway
    fresh_gateway.proc.wait(10)
    deadline = time.monotonic() + 5
    while not _gone(children[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(children[0]), "the decoder child outlived its gateway"
