"""Very large REST bodies are decoded in a child process, so the gateway's loop never stops.

`orjson.loads` and building the message from its result are single calls that hold the GIL:
on a 64 MB body of small vectors about 2 s, during which even a thread stops the event loop
(and the parent would hold the JSON's million Python objects). Above `CHILD_DECODE_BYTES` the
body goes to one child process, which parses it, builds the request message and sends back its
protobuf encoding; the gateway parses that in pieces in a thread (server/protobuf_pieces.py),
giving the loop the GIL between pieces. Errors come back as the same ApiError, field named.

The child starts on the first such body (spawned: a fork would copy grpc's threads), dies with
the gateway (server/child_process.py) and is started again if it dies. Methods the child
cannot know (services from extra descriptor sets, as in tests) are decoded in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from google.protobuf import message

from citadel.adapters.bindings import Binding, bindings_for
from citadel.server.descriptors import SERVICES
from citadel.server.protobuf_pieces import parse_in_pieces

CHILD_DECODE_BYTES = 1024 * 1024  # ~40 ms of GIL-holding parse at most stays in a thread

log = logging.getLogger("citadel.adapters.rest")
_PRODUCT_SERVICES = {service.full_name for service in SERVICES}
_child_bindings: dict[tuple[str, int], Binding] = {}


class DecoderProcess:
    """The gateway's side: one child process, started when first needed."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    @staticmethod
    def serves(binding: Binding) -> bool:
        return binding.spec.service in _PRODUCT_SERVICES

    async def build_request(
        self, binding: Binding, path_values: dict[str, str], pairs: list[tuple[str, str]], body: bytes
    ) -> message.Message:
        key = (binding.spec.path, binding.index)
        loop = asyncio.get_running_loop()
        try:
            encoded = await loop.run_in_executor(self._executor(), _encode, key, path_values, pairs, body)
        except BrokenProcessPool:
            # The child died (killed, out of memory): this body is decoded in a thread, the next
            # one starts a new child.
            log.warning("REST body decoder process died; starting another for the next large body")
            self._pool = None
            return await asyncio.to_thread(binding.build_request, path_values, pairs, body)
        msg = binding.spec.request_type()
        await asyncio.to_thread(parse_in_pieces, msg, encoded)
        return msg

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


# -- in the child ---------------------------------------------------------------------------


def _start_child(parent: int) -> None:
    from citadel.server.child_process import die_with_parent
    from citadel.server.methods import method_specs

    die_with_parent(parent)
    for spec in method_specs(SERVICES):
        for binding in bindings_for(spec):
            _child_bindings[spec.path, binding.index] = binding


def _encode(
    key: tuple[str, int], path_values: dict[str, str], pairs: list[tuple[str, str]], body: bytes
) -> bytes:
    """The request's protobuf encoding; an ApiError (pickled, field named) when it has none."""
    return _child_bindings[key].build_request(path_values, pairs, body).SerializeToString()
