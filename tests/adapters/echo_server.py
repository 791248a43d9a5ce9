"""A gateway serving the product's services plus the test-only EchoService.

Run as `python -m tests.adapters.echo_server serve --grpc-port 0 ...` (the flags of
`citadel serve` that tests use). No adapter code knows EchoService: it reaches REST,
GraphQL and OpenAPI only through the descriptors, which is what the tests prove.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import grpc
from google.protobuf import empty_pb2
from grpc_interceptor.exceptions import GrpcException

from citadel.server import logs
from citadel.server.chain import Call
from citadel.server.config import Settings
from citadel.server.descriptors import SERVICES
from citadel.server.errors import ApiError, invalid
from citadel.server.gateway import Gateway
from tests.adapters.echo import DESCRIPTOR_SET, SERVICE, SERVICE_NAME, echo_pb2

MAX_COUNT = 1000


def _status(field: str, name: str) -> grpc.StatusCode:
    code = grpc.StatusCode.__members__.get(name)
    if code is None:
        raise invalid(field, f"{name!r} is not a gRPC status code name")
    return code


class EchoServicer:
    async def Echo(self, request, call: Call):
        reply = echo_pb2.EchoResponse(
            request=request, metadata=dict(call.metadata), request_id=call.request_id, protocol=call.protocol
        )
        remaining = call.time_remaining()
        if remaining is not None:
            reply.deadline_seconds.value = remaining
        call.response_metadata["x-echo-protocol"] = call.protocol
        return reply

    Reflect = Echo

    async def GetBook(self, request, call: Call):
        if not request.name.startswith("shelves/"):
            raise invalid("name", f"{request.name!r} is not shelves/*/books/*")
        if request.name.endswith("/missing"):
            raise ApiError(grpc.StatusCode.NOT_FOUND, f"book {request.name!r} not found")
        return echo_pb2.Book(name=request.name, title=f"Title of {request.name}", pages=len(request.name))

    async def UpdateBook(self, request, call: Call):
        if request.book.pages < 0:
            raise invalid("book.pages", f"must not be negative, got {request.book.pages}")
        return request.book

    async def DeleteBook(self, request, call: Call):
        return empty_pb2.Empty()

    async def Raise(self, request, call: Call):
        code = _status("code", request.code or "OK")
        if request.sleep_ms:
            await asyncio.sleep(request.sleep_ms / 1000)
        if code != grpc.StatusCode.OK:
            # grpc-interceptor's exception, as a servicer may raise it: the chain answers it the
            # same on every protocol (the parity tests compare them).
            raise GrpcException(details=request.message, status_code=code)
        return echo_pb2.RaiseResponse(message=request.message)

    async def Count(self, request, call: Call):
        if not 0 <= request.to <= MAX_COUNT:
            raise invalid("to", f"must be between 0 and {MAX_COUNT}, got {request.to}")
        fail = _status("fail_code", request.fail_code) if request.fail_code else None

        async def numbers():
            for n in range(1, request.to + 1):
                if fail is not None and n > request.fail_after:
                    raise GrpcException(details=f"failed after {request.fail_after} items", status_code=fail)
                if request.interval_ms:
                    await asyncio.sleep(request.interval_ms / 1000)
                yield echo_pb2.CountResponse(n=n, big=n * 10**12, vector=[n, n / 2])

        return numbers()


async def serve(settings: Settings, ready_file: Path | None) -> int:
    gateway = Gateway(
        settings,
        services=(*SERVICES, SERVICE),
        extra_servicers={SERVICE_NAME: EchoServicer()},
        extra_descriptor_sets=(DESCRIPTOR_SET,),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ports = await gateway.start()
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "grpc_port": ports.grpc, "http_port": ports.http}))
        tmp.replace(ready_file)
    await stop.wait()
    await gateway.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="echo_server")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--grpc-port", type=int, default=0)
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--insecure-no-auth", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings.load()
    settings.grpc_port, settings.http_port, settings.data_dir = args.grpc_port, args.http_port, args.data_dir
    if args.insecure_no_auth:
        settings.auth_enabled = False
    settings.validate()
    logs.configure(settings.log_level)
    return asyncio.run(serve(settings, args.ready_file))


if __name__ == "__main__":
    sys.exit(main())
