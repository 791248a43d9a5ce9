"""The operator commands of `citadel`: clients of a running gateway over gRPC, through the SDK
(`citadel.client`). Each module registers its subcommands; `run` maps outcomes to exit codes."""

from __future__ import annotations

import argparse

from citadel.server.cli_commands import collections, embed, ingest, jobs, models, search, status
from citadel.server.cli_commands.common import EXIT_CODES_HELP, run

EPILOG = EXIT_CODES_HELP

__all__ = ["EPILOG", "is_client_command", "register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    for module in (collections, search, embed, ingest, jobs, models, status):
        module.register(sub)


def is_client_command(args: argparse.Namespace) -> bool:
    return hasattr(args, "client_command")
