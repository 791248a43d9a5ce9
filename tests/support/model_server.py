"""A small embedding server for tests, speaking the Ollama, OpenAI and TEI APIs at once, backed by
the real local model, with controllable delay and failure. Run as a subprocess:

    python -m tests.support.model_server --port 0 --ready-file F [--delay-ms N] ...

Control while it runs (JSON bodies; every field optional, the rest kept):

    POST /_control {"delay_ms", "fail_rate", "fail_status", "fail_next", "retry_after",
                    "dimension", "scale", "max_batch", "force_base64"}
    GET  /_stats   {"requests", "texts", "probes", "by_route", "in_flight", "max_in_flight", "failed",
                    "traceparents"}
    POST /_reset   zero the counters

- `fail_next` N: the next N embedding requests answer `fail_status` (default 503), with
  Retry-After when `retry_after` is set; `fail_rate` fails that share at random.
- `dimension` D: answer only the first D values (a wrong-dimension replica); `scale` multiplies
  every vector (a replica that does not normalise).
- `max_batch` N: more texts in one request → 413; a text containing REJECT_MARKER → 422.
- Health probes (the gateway's fixed probe text) are counted apart, under `probes`, so request
  counts measure routed traffic only.

Killing the process (SIGKILL) is how tests make a backend die; `ModelServer.restart` brings it
back on the same port.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REJECT_MARKER = "<<reject-me>>"
START_TIMEOUT = 60.0


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.control = {
            "delay_ms": args.delay_ms,
            "fail_rate": args.fail_rate,
            "fail_status": 503,
            "fail_next": 0,
            "retry_after": None,
            "dimension": args.dimension,
            "scale": args.scale,
            "max_batch": args.max_batch,
            "force_base64": False,
        }
        self.reset()
        self.rng = random.Random(args.seed)

    def reset(self) -> None:
        self.requests = 0
        self.texts = 0
        self.probes = 0
        self.failed = 0
        self.by_route: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.traceparents: list[str] = []  # W3C traceparent of recent routed requests

    def stats(self) -> dict:
        return {
            "requests": self.requests,
            "texts": self.texts,
            "probes": self.probes,
            "failed": self.failed,
            "by_route": self.by_route,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "traceparents": self.traceparents,
        }


def build_app(state: State):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from citadel.server.models.health import PROBE_TEXT
    from citadel.server.models.local import LocalEmbedder

    embedder = LocalEmbedder()

    def texts_of(value) -> list[str] | None:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and value and all(isinstance(t, str) for t in value):
            return value
        return None

    async def embed(request: Request, route: str, field: str):
        try:
            body = await request.json()
        except ValueError:
            return None, JSONResponse({"error": "body is not JSON"}, 400)
        texts = texts_of(body.get(field) if isinstance(body, dict) else None)
        if texts is None:
            return None, JSONResponse({"error": f"{field}: expected a string or a list of strings"}, 400)
        c = state.control
        probe = texts == [PROBE_TEXT]
        if probe:
            state.probes += 1
        else:
            state.requests += 1
            state.texts += len(texts)
            state.by_route[route] = state.by_route.get(route, 0) + 1
            state.traceparents = [*state.traceparents[-49:], request.headers.get("traceparent", "")]
        if not probe and (c["fail_next"] > 0 or (c["fail_rate"] and state.rng.random() < c["fail_rate"])):
            c["fail_next"] = max(0, c["fail_next"] - 1)
            state.failed += 1
            headers = {"retry-after": str(c["retry_after"])} if c["retry_after"] is not None else {}
            return None, JSONResponse({"error": "injected failure"}, c["fail_status"], headers=headers)
        if c["max_batch"] and len(texts) > c["max_batch"]:
            return None, JSONResponse({"error": f"batch of {len(texts)} exceeds {c['max_batch']}"}, 413)
        if any(REJECT_MARKER in t for t in texts):
            return None, JSONResponse({"error": "Input validation error: rejected text"}, 422)
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if c["delay_ms"]:
                await asyncio.sleep(c["delay_ms"] / 1000)
            vectors = await asyncio.to_thread(embedder.embed, texts)
        finally:
            state.in_flight -= 1
        if c["dimension"]:
            vectors = vectors[:, : c["dimension"]]
        if c["scale"] != 1.0:
            vectors = vectors * c["scale"]
        return (body, vectors), None

    async def ollama(request: Request):
        result, error = await embed(request, "ollama", "input")
        if error:
            return error
        body, vectors = result
        return JSONResponse({"model": body.get("model", ""), "embeddings": vectors.tolist()})

    async def openai(request: Request):
        result, error = await embed(request, "openai", "input")
        if error:
            return error
        body, vectors = result
        b64 = body.get("encoding_format") == "base64" or state.control["force_base64"]
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if b64 else v.tolist(),
            }
            for i, v in enumerate(vectors)
        ]
        data.reverse()  # rows are matched by index, not by position
        return JSONResponse({"object": "list", "data": data, "model": body.get("model", "")})

    async def tei(request: Request):
        result, error = await embed(request, "tei", "inputs")
        if error:
            return error
        return JSONResponse(result[1].tolist())

    async def control(request: Request):
        changes = await request.json()
        unknown = set(changes) - set(state.control)
        if unknown:
            return JSONResponse({"error": f"unknown control {sorted(unknown)}"}, 400)
        state.control.update(changes)
        return JSONResponse(state.control)

    async def stats(request: Request):
        return JSONResponse(state.stats())

    async def reset(request: Request):
        state.reset()
        return JSONResponse(state.stats())

    return Starlette(
        routes=[
            Route("/api/embed", ollama, methods=["POST"]),
            Route("/v1/embeddings", openai, methods=["POST"]),
            Route("/embed", tei, methods=["POST"]),
            Route("/_control", control, methods=["POST"]),
            Route("/_stats", stats, methods=["GET"]),
            Route("/_reset", reset, methods=["POST"]),
        ]
    )


async def serve(args: argparse.Namespace) -> None:
    import uvicorn

    app = build_app(State(args))
    # IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted connections: without it every
    # answer waits on Nagle + delayed ACK (~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    ready = Path(args.ready_file)
    tmp = ready.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "port": sock.getsockname()[1]}))
    tmp.replace(ready)
    await server.serve(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="model_server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--dimension", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--max-batch", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args))


class ModelServer:
    """The server above as a subprocess on a loopback port; restartable on the same port."""

    def __init__(self, workdir: Path, name: str = "model", **options) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.options = options
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{name}.log"
        self._client = httpx.Client(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ModelServer:
        return self.launch().wait_ready()

    @property
    def _ready(self) -> Path:
        return self.workdir / f"{self.name}.ready.json"

    def launch(self) -> ModelServer:
        """Starts the process without waiting (start several, then wait_ready each)."""
        ready = self._ready
        ready.unlink(missing_ok=True)
        args = [
            sys.executable,
            "-m",
            "tests.support.model_server",
            "--port",
            str(self.port),
            "--ready-file",
            str(ready),
        ]
        for key, value in self.options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            args, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, cwd=root, env=env
        )
        return self

    def wait_ready(self) -> ModelServer:
        ready = self._ready
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"model server exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"model server not ready within {START_TIMEOUT} s:\n{self.log()}")
            time.sleep(0.02)
        self.port = json.loads(ready.read_text())["port"]
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def control(self, **changes) -> dict:
        response = self._client.post(f"{self.url}/_control", json=changes)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        return self._client.get(f"{self.url}/_stats").json()

    def reset(self) -> None:
        self._client.post(f"{self.url}/_reset").raise_for_status()

    def kill(self) -> None:
        """SIGKILL: the backend dies mid-flight, as a crashed server does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> ModelServer:
        self.kill()
        return self.start()

    def close(self) -> None:
        self.kill()
        self._client.close()


if __name__ == "__main__":
    main()
