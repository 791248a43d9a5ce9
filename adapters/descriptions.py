"""Proto comments by symbol: the documentation OpenAPI and GraphQL descriptions are built from.

Generated `_pb2` descriptors carry no source info, so comments are read from the descriptor
sets `make generate` writes (with `--include_source_info`) and indexed by full name.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pb2

# Field numbers in descriptor.proto that make up SourceCodeInfo paths.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM, _MESSAGE_ONEOF = 2, 3, 4, 8
_ENUM_VALUE, _SERVICE_METHOD = 2, 2


class Descriptions:
    """Leading (else trailing) comment of every message, field, enum, value, service and method."""

    def __init__(self, sets: Iterable[descriptor_pb2.FileDescriptorSet]) -> None:
        self._by_name: dict[str, str] = {}
        seen: set[str] = set()
        for fds in sets:
            for f in fds.file:
                if f.name not in seen:
                    seen.add(f.name)
                    self._index(f)

    def of(self, full_name: str) -> str:
        """The comment of a symbol ('' when it has none)."""
        return self._by_name.get(full_name, "")

    def _index(self, f: descriptor_pb2.FileDescriptorProto) -> None:
        names: dict[tuple[int, ...], str] = {}
        prefix = f"{f.package}." if f.package else ""
        for i, m in enumerate(f.message_type):
            self._message(names, (_FILE_MESSAGE, i), prefix + m.name, m)
        for i, e in enumerate(f.enum_type):
            self._enum(names, (_FILE_ENUM, i), prefix + e.name, e)
        for i, s in enumerate(f.service):
            path = (_FILE_SERVICE, i)
            names[path] = prefix + s.name
            for j, m in enumerate(s.method):
                names[(*path, _SERVICE_METHOD, j)] = f"{prefix}{s.name}.{m.name}"
        for loc in f.source_code_info.location:
            name = names.get(tuple(loc.path))
            text = (loc.leading_comments or loc.trailing_comments).strip()
            if name is not None and text:
                self._by_name[name] = _dedent(text)

    def _message(self, names, path, full, m: descriptor_pb2.DescriptorProto) -> None:
        names[path] = full
        for i, field in enumerate(m.field):
            names[(*path, _MESSAGE_FIELD, i)] = f"{full}.{field.name}"
        for i, oneof in enumerate(m.oneof_decl):
            names[(*path, _MESSAGE_ONEOF, i)] = f"{full}.{oneof.name}"
        for i, nested in enumerate(m.nested_type):
            self._message(names, (*path, _MESSAGE_NESTED, i), f"{full}.{nested.name}", nested)
        for i, e in enumerate(m.enum_type):
            self._enum(names, (*path, _MESSAGE_ENUM, i), f"{full}.{e.name}", e)

    def _enum(self, names, path, full, e: descriptor_pb2.EnumDescriptorProto) -> None:
        names[path] = full
        # Enum values are scoped to the enum's parent in protobuf, but indexing them under
        # the enum keeps two enums' values apart for documentation.
        for i, value in enumerate(e.value):
            names[(*path, _ENUM_VALUE, i)] = f"{full}.{value.name}"


def _dedent(text: str) -> str:
    return "\n".join(line[1:] if line.startswith(" ") else line for line in text.splitlines()).strip()


def summary(text: str) -> str:
    """First sentence of a comment, for OpenAPI summaries."""
    first = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    end = first.find(". ")
    return first if end < 0 else first[: end + 1]
