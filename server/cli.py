"""The `citadel` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from citadel.server import logs
from citadel.server.auth import api_keys
from citadel.server.config import ConfigError, Settings
from citadel.server.models.catalog import describe
from citadel.server.ready_file import write_ready_file

log = logging.getLogger("citadel")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `serve` leaves out the client commands: they import the SDK, ~0.15 s of start-up it never uses.
    commands = None if argv[:1] == ["serve"] else _client_commands()
    parser = argparse.ArgumentParser(
        prog="citadel",
        description="gRPC-first vector database gateway",
        epilog=commands.EPILOG if commands is not None else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway (gRPC, and REST/GraphQL on the HTTP port)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1; env CITADEL_HOST)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default 8081; 0 picks a free one)")
    serve.add_argument("--http-port", type=int, help="REST/GraphQL port (default 8000)")
    serve.add_argument("--data-dir", type=Path, help="embedded data directory (default .citadel-data)")
    serve.add_argument(
        "--workers",
        type=int,
        help="gateway processes sharing the ports (default 1; env CITADEL_WORKERS); one uses one core",
    )
    serve.add_argument("--ready-file", type=Path, help="write the bound ports as JSON here once ready")
    serve.add_argument("--config", type=Path, help="TOML settings file (env CITADEL_CONFIG)")
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without authentication (development only; logged as a warning)",
    )
    keys = sub.add_parser("keys", help="API key tools").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="make a new API key and print the config entry for it")
    create.add_argument("--id", required=True, help="key id: 1-32 of a-z, 0-9, '-'")
    create.add_argument("--role", required=True, choices=["reader", "writer", "admin"])
    create.add_argument("--tenant", default="", help="confine the key to this tenant's collections")
    create.add_argument(
        "--key-file", type=Path, help="write the key to this new file (mode 0600) instead of stderr"
    )
    config = sub.add_parser("config", help="settings tools").add_subparsers(
        dest="config_command", required=True
    )
    check = config.add_parser(
        "check", help="validate a settings file (and CITADEL_* variables) without starting"
    )
    check.add_argument("file", type=Path)
    if commands is not None:
        commands.register(sub)
    args = parser.parse_args(argv)
    if commands is not None and commands.is_client_command(args):
        return commands.run(args)
    if args.command == "config":
        return _check_config(args.file)
    if args.command == "keys":
        return _create_key(args.id, args.role, args.tenant, args.key_file)

    flags = {
        name: getattr(args, name)
        for name in ("host", "grpc_port", "http_port", "data_dir", "workers")
        if getattr(args, name) is not None
    }
    if args.insecure_no_auth:
        flags["auth_enabled"] = False
    try:
        settings = Settings.load(args.config, overrides=flags)
    except ConfigError as e:
        print(f"citadel: configuration error: {e}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    if settings.workers > 1:
        from citadel.server.workers.supervisor import Supervisor

        return asyncio.run(Supervisor(settings, args.ready_file).run())
    return asyncio.run(_serve(settings, args.ready_file))


def _client_commands():
    from citadel.server import cli_commands

    return cli_commands


def _check_config(path: Path) -> int:
    try:
        settings = Settings.load(path)
        catalog = settings.parsed.catalog
        if problem := settings.missing_credentials():
            raise ConfigError(f"{problem} (serve would refuse)")
    except (ConfigError, ValueError) as e:
        print(f"citadel: {e}", file=sys.stderr)
        return 2
    auth = "on" if settings.auth_enabled else "OFF"
    print(f"{path}: ok (gRPC {settings.host}:{settings.grpc_port}, HTTP {settings.http_port}, auth {auth})")
    print(f"models: {describe(catalog)}")
    return 0


def _create_key(key_id: str, role: str, tenant: str, key_file: Path | None) -> int:
    try:
        key, hashed = api_keys.new_key(key_id)
        if key_file is not None:
            # Never over an existing file: it may hold another key that is still in use.
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(key + "\n")
    except ValueError as e:
        print(f"citadel: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"citadel: --key-file {str(key_file)!r}: {e.strerror}", file=sys.stderr)
        return 2
    if key_file is None:
        print(f"# API key (shown once; give it to the client): {key}", file=sys.stderr)
    print("[[auth.api_keys]]")
    print(f'id = "{key_id}"')
    print(f'hash = "{hashed}"')
    print(f'role = "{role}"')
    if tenant:
        print(f'tenant = "{tenant}"')
    return 0


async def _serve(settings: Settings, ready_file: Path | None) -> int:
    # Imported here: they load the store and model backends (seconds), which the client
    # commands (`citadel collections list` ...) never need.
    from citadel.server.gateway import Gateway
    from citadel.server.serving import handle_signals, run_gateway

    stop = asyncio.Event()
    handle_signals(stop)

    async def report(ports) -> None:
        if ready_file is not None:
            write_ready_file(ready_file, ports.grpc, ports.http)

    return await run_gateway(Gateway(settings), report, stop)


if __name__ == "__main__":
    sys.exit(main())
