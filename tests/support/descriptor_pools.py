"""Descriptor pools of their own, for tests that build a one-method service with some option."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool

from citadel.options.v1 import options_pb2


def pool_with_options() -> descriptor_pool.DescriptorPool:
    """A fresh pool holding descriptor.proto and Citadel's options.proto, so a test file may
    `dependency=["citadel/options/v1/options.proto"]` and set any method option."""
    pool = descriptor_pool.DescriptorPool()
    for module in (descriptor_pb2, options_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    return pool
