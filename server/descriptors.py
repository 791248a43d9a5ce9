"""The services the gateway serves and a descriptor pool that keeps the proto comments.

Generated `_pb2` modules register descriptors without source info, so comments would be
lost to reflection and the adapters. The descriptor set that `make generate` writes keeps
them; it is loaded once into its own pool.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

import citadel
from citadel.admin.v1 import admin_service_pb2
from citadel.batch.v1 import batch_service_pb2
from citadel.vector.v1 import vector_service_pb2

# The product's services; tests may serve more through the same machinery.
SERVICES: tuple[descriptor.ServiceDescriptor, ...] = (
    vector_service_pb2.DESCRIPTOR.services_by_name["VectorService"],
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
    batch_service_pb2.DESCRIPTOR.services_by_name["BatchService"],
)


@cache
def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    # `citadel` is spread over several directories (generated code, server, adapters), so
    # look in each of its path entries rather than through importlib.resources.
    for entry in citadel.__path__:
        path = Path(entry) / "descriptor_set.binpb"
        if path.is_file():
            return descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    raise FileNotFoundError("citadel/descriptor_set.binpb is missing: run `make generate`")


def pool_with_comments(
    extra_sets: tuple[descriptor_pb2.FileDescriptorSet, ...] = (),
    extra_files: tuple[descriptor.FileDescriptor, ...] = (),
) -> descriptor_pool.DescriptorPool:
    """A pool holding our files with source info, plus `extra_files` (for example the
    health and reflection protos) so reflection can describe every service it lists."""
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    for fds in (descriptor_set(), *extra_sets):
        for f in fds.file:
            if f.name not in added:
                pool.Add(f)
                added.add(f.name)
    for fd in extra_files:
        _add_with_deps(pool, fd, added)
    return pool


def _add_with_deps(
    pool: descriptor_pool.DescriptorPool, fd: descriptor.FileDescriptor, added: set[str]
) -> None:
    if fd.name in added:
        return
    for dep in fd.dependencies:
        _add_with_deps(pool, dep, added)
    proto = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(proto)
    pool.Add(proto)
    added.add(fd.name)


def comments(pool: descriptor_pool.DescriptorPool, file_name: str) -> dict[tuple[int, ...], str]:
    """Leading comments of a file by source path (as in SourceCodeInfo)."""
    proto = descriptor_pb2.FileDescriptorProto()
    pool.FindFileByName(file_name).CopyToProto(proto)
    return {tuple(loc.path): loc.leading_comments.strip() for loc in proto.source_code_info.location}
