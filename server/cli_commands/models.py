"""`citadel models`: the embedding models and the live state of their backends."""

from __future__ import annotations

import argparse

from citadel.client import Client, vector
from citadel.server.cli_commands.common import add_command, enum_name, print_json, table, to_json, wants_json


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "models", "list embedding models and their backends' health, circuits and load", run)


def run(args: argparse.Namespace, client: Client) -> int:
    reply = client.vector.list_models(vector.ListModelsRequest())
    if wants_json(args):
        print_json(to_json(reply))
        return 0
    rows = []
    for model in reply.models:
        name = model.name + (" (default)" if model.name == reply.default_model else "")
        rows.append(
            [name, enum_name(model.pattern), str(model.dimensions), model.strategy, str(len(model.backends))]
        )
    print(table(rows, ["MODEL", "PATTERN", "DIMENSIONS", "STRATEGY", "BACKENDS"]))
    backends = [
        [
            model.name,
            b.id,
            b.provider,
            b.url or "-",
            _health(b),
            enum_name(b.circuit),
            f"{b.in_flight}/{b.max_concurrency}",
            f"{b.latency_ewma_ms:.1f} ms",
            b.last_error or "",
        ]
        for model in reply.models
        for b in model.backends
    ]
    if backends:
        print()
        print(
            table(
                backends,
                [
                    "MODEL",
                    "BACKEND",
                    "PROVIDER",
                    "URL",
                    "HEALTH",
                    "CIRCUIT",
                    "IN FLIGHT",
                    "LATENCY",
                    "LAST ERROR",
                ],
            )
        )
    return 0


def _health(b: vector.ModelBackend) -> str:
    states = ["healthy" if b.healthy else "unhealthy"]
    if b.ejected:
        states.append("ejected")
    if not b.consistent:
        states.append("inconsistent")
    return ",".join(states)
