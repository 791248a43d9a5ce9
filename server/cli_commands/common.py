"""What every client command shares: connection flags, exit codes, output and error reporting."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar

import betterproto2
import grpc
from google.protobuf import json_format

from citadel.client import DEFAULT_TARGET, CitadelError, Client

M = TypeVar("M", bound=betterproto2.Message)


class Exit(IntEnum):
    OK = 0
    SERVER_ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    DENIED = 4
    UNAVAILABLE = 5
    INTERRUPTED = 130


EXIT_CODES_HELP = """exit codes:
  0  ok
  1  server error (INTERNAL, UNKNOWN ...), or a batch job that ended without every item written
  2  usage or bad input: wrong flags, unreadable or invalid input file, INVALID_ARGUMENT,
     FAILED_PRECONDITION, OUT_OF_RANGE, ALREADY_EXISTS
  3  not found (NOT_FOUND): no such collection, vector or job
  4  not allowed: UNAUTHENTICATED (no or bad API key), PERMISSION_DENIED (role or tenant)
  5  unavailable, try again later: UNAVAILABLE (gateway unreachable), DEADLINE_EXCEEDED
     (--timeout passed), RESOURCE_EXHAUSTED (rate limited)

environment: CITADEL_TARGET (--target), CITADEL_API_KEY (--api-key)"""

_BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: Exit.USAGE,
    grpc.StatusCode.FAILED_PRECONDITION: Exit.USAGE,
    grpc.StatusCode.OUT_OF_RANGE: Exit.USAGE,
    grpc.StatusCode.ALREADY_EXISTS: Exit.USAGE,
    grpc.StatusCode.NOT_FOUND: Exit.NOT_FOUND,
    grpc.StatusCode.UNAUTHENTICATED: Exit.DENIED,
    grpc.StatusCode.PERMISSION_DENIED: Exit.DENIED,
    grpc.StatusCode.UNAVAILABLE: Exit.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: Exit.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Exit.UNAVAILABLE,
}


class UsageError(Exception):
    """Bad flags or input found before (or instead of) calling the gateway: exit 2."""


class CommandFailed(Exception):
    """The command ran but its outcome is a failure (for example a job that partially failed)."""

    def __init__(self, message: str, code: Exit = Exit.SERVER_ERROR) -> None:
        super().__init__(message)
        self.code = code


def connection_flags() -> argparse.ArgumentParser:
    """Flags every client command takes, after its name (`citadel jobs list --json`)."""
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("connection and output")
    # SUPPRESS: a flag given on `citadel jobs` is not reset by the default of `jobs list`.
    group.add_argument(
        "--target",
        default=argparse.SUPPRESS,
        help=f"gateway gRPC address (default: env CITADEL_TARGET or {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--api-key", default=argparse.SUPPRESS, help="API key or JWT (default: env CITADEL_API_KEY)"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS,
        help="seconds each call may take (default 30; streams run until they end)",
    )
    group.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON"
    )
    return flags


def add_command(
    sub: argparse._SubParsersAction, name: str, help: str, run: Callable[[argparse.Namespace, Client], int]
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help, parents=[connection_flags()])
    parser.set_defaults(client_command=run)
    return parser


def add_group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    parser = sub.add_parser(name, help=help, description=help, parents=[connection_flags()])
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def connect(args: argparse.Namespace) -> Client:
    target = getattr(args, "target", None) or os.environ.get("CITADEL_TARGET") or DEFAULT_TARGET
    api_key = getattr(args, "api_key", None) or os.environ.get("CITADEL_API_KEY") or None
    timeout = getattr(args, "timeout", 30.0)
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout: must be more than 0 seconds, got {timeout}")
    return Client(target, api_key=api_key, timeout=timeout)


def uncached(client: Client) -> Client:
    """The client with `cache-control: no-cache`: operators see the current state (for example a
    collection's vector count right after an ingest), not a cached answer."""
    return client.with_options(metadata=(*client.metadata, ("cache-control", "no-cache")))


def run(args: argparse.Namespace) -> int:
    """Runs a client command; maps its outcome to an exit code and a one-line message."""
    client = None
    try:
        client = connect(args)
        return int(args.client_command(args, client))
    except UsageError as e:
        return fail(str(e), Exit.USAGE)
    except CommandFailed as e:
        return fail(str(e), e.code)
    except CitadelError as e:
        return fail(f"{e.code().name}: {e.details()}", _BY_STATUS.get(e.code(), Exit.SERVER_ERROR))
    except KeyboardInterrupt:
        return fail("interrupted", Exit.INTERRUPTED)
    except BrokenPipeError:
        # The reader of stdout went away (`citadel jobs list | head`): not an error worth a trace.
        sys.stderr.close()
        return Exit.OK
    finally:
        # After the except clauses: an interrupted command has left through fail()'s _exit by
        # now, never closing the channel its blocking call was interrupted in.
        if client is not None:
            client.close()


def fail(message: str, code: Exit) -> int:
    print(f"citadel: {message}", file=sys.stderr)
    if code == Exit.INTERRUPTED:
        # grpc's C core can abort (SIGABRT) tearing down a channel whose blocking call was just
        # interrupted; the message is out and nothing is left to clean up, so leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    return int(code)


def to_json(message: betterproto2.Message) -> Any:
    """A message in proto3 JSON exactly as the REST API writes it: the SDK message is read back
    as the gateway's own protobuf type and written by the REST adapter's encoder."""
    # Imported here: only --json needs the gateway's message types and encoder.
    from google.protobuf import descriptor_pool, message_factory

    import citadel.server.descriptors  # noqa: F401  (registers the gateway's messages)
    from citadel.adapters import json_codec
    from citadel.sdk.message_pool import default_message_pool

    full_name = default_message_pool.type_to_url[type(message)].rpartition("/")[2]
    kind = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(full_name))
    return json_codec.Encoder().message(kind.FromString(bytes(message)))


def print_json(value: Any) -> None:
    from citadel.adapters import json_codec

    print(json_codec.dumps(value).decode())


def tidy(value: Any) -> Any:
    """JSON-like values for people: whole numbers from a Struct (floats there) printed as integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tidy(v) for v in value]
    return value


def compact(value: Any) -> str:
    return json.dumps(tidy(value), ensure_ascii=False, separators=(", ", ": "))


def enum_name(value: betterproto2.Enum) -> str:
    """`Distance.COSINE` → `cosine`."""
    return (value.name or str(int(value))).lower()


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def parse_json_arg(flag: str, text: str) -> Any:
    """A flag's JSON value: inline, `@FILE`, or `-` for stdin."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise UsageError(f"{flag}: cannot read {text[1:]}: {e.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{flag}: not valid JSON: {e}") from None


def parse_vector(flag: str, text: str) -> list[float]:
    value = parse_json_arg(flag, text)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    ):
        raise UsageError(f"{flag}: expected a non-empty JSON array of numbers")
    return [float(x) for x in value]


def parse_message(flag: str, value: Any, sdk_type: type[M], pb_type: type) -> M:
    """A JSON value (proto3 JSON, as REST takes it) as an SDK message. protobuf's parser checks
    it strictly and names the bad field; the bytes then become the SDK's dataclass."""
    if not isinstance(value, dict):
        raise UsageError(f"{flag}: expected a JSON object")
    try:
        parsed = json_format.ParseDict(value, pb_type())
    except json_format.ParseError as e:
        raise UsageError(f"{flag}: {e}") from None
    return sdk_type.parse(parsed.SerializeToString())
