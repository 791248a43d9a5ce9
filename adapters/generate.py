"""Writes the OpenAPI document and the GraphQL SDL derived from the protos (`make generate`).

    python -m citadel.adapters.generate generated/citadel
        the product's services → generated/citadel/openapi.json, schema.graphql
    python -m citadel.adapters.generate OUT --descriptor-set FILE
        the services of another descriptor set (tests/protos) → OUT/openapi.json, schema.graphql

Both files are byte-reproducible (sorted keys, no timestamps) so CI can diff them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from citadel.adapters import graphql_schema, openapi
from citadel.adapters.descriptions import Descriptions
from citadel.server.descriptors import SERVICES, descriptor_set
from citadel.server.methods import MethodSpec, method_specs


def register(fds: descriptor_pb2.FileDescriptorSet) -> list[descriptor.ServiceDescriptor]:
    """Adds the set's files to the default pool (skipping ones already there) and returns the
    services the set declares beyond the product's own files."""
    pool = descriptor_pool.Default()
    product = {f.name for f in descriptor_set().file}
    services = []
    for f in fds.file:
        try:
            fd = pool.FindFileByName(f.name)
        except KeyError:
            fd = pool.AddSerializedFile(f.SerializeToString())
        if f.name not in product:
            services += [fd.services_by_name[s.name] for s in f.service]
    return services


def write(out: Path, specs: Sequence[MethodSpec], descriptions: Descriptions) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    doc = out / "openapi.json"
    doc.write_text(openapi.render(openapi.build(specs, descriptions)), encoding="utf-8")
    sdl = out / "schema.graphql"
    sdl.write_text(graphql_schema.sdl(graphql_schema.build_schema(specs, descriptions)), encoding="utf-8")
    return [doc, sdl]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m citadel.adapters.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out", type=Path, help="directory to write openapi.json and schema.graphql into")
    parser.add_argument(
        "--descriptor-set", type=Path, help="describe this set's services instead of the product's"
    )
    args = parser.parse_args(argv)
    if args.descriptor_set is None:
        services: Sequence[descriptor.ServiceDescriptor] = SERVICES
        sets = [descriptor_set()]
    else:
        extra = descriptor_pb2.FileDescriptorSet.FromString(args.descriptor_set.read_bytes())
        services = register(extra)
        if not services:
            print(f"{args.descriptor_set}: declares no service", file=sys.stderr)
            return 1
        sets = [descriptor_set(), extra]
    for path in write(args.out, method_specs(services), Descriptions(sets)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
