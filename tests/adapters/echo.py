"""The test-only EchoService (tests/protos), compiled by `make generate` into tests/generated.

tests/generated is not a package under the `citadel` namespace, so its module is loaded by
path; the descriptor set beside it carries the proto comments.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from google.protobuf import descriptor_pb2

GENERATED = Path(__file__).resolve().parents[1] / "generated"


def _load_pb2():
    path = GENERATED / "citadel" / "testing" / "v1" / "echo_pb2.py"
    spec = importlib.util.spec_from_file_location("citadel_testing_v1_echo_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


echo_pb2 = _load_pb2()
SERVICE = echo_pb2.DESCRIPTOR.services_by_name["EchoService"]
SERVICE_NAME = SERVICE.full_name
DESCRIPTOR_SET = descriptor_pb2.FileDescriptorSet.FromString(
    (GENERATED / "descriptor_set.binpb").read_bytes()
)
