"""Parsing a large protobuf message in pieces, so that no single C call holds the GIL long.

`FromString` on a 30 MB message of a million small vectors is one call of ~0.8 s that holds
the GIL: run in a thread, it still stops the event loop for all of it. Protobuf defines
parsing two concatenated encodings as merging them, so a message can be parsed as a sequence
of `MergeFromString` calls over consecutive runs of its top-level fields, each at most
`PIECE_BYTES` long; a field larger than that which is itself a message is parsed the same way
into its sub-message (up to `MAX_SPLIT_DEPTH` levels). Between pieces the thread running this
gives the GIL back, so the loop keeps serving. The result equals `FromString`'s.
"""

from __future__ import annotations

from google.protobuf import message

PIECE_BYTES = 256 * 1024  # ~5 ms of parsing for the smallest fields; under this: parse at once
MAX_SPLIT_DEPTH = 4  # UpsertVectorsRequest → vectors[i] → metadata → a value: deep enough

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def parse_in_pieces(msg: message.Message, data: bytes, depth: int = 0) -> None:
    """Merges the encoded message `data` into `msg`; raises message.DecodeError when it is not
    one (truncated, or a wire type proto3 does not use)."""
    fields = msg.DESCRIPTOR.fields_by_number
    end = len(data)
    start = pos = 0  # the pending piece is data[start:pos]
    while pos < end:
        field_start = pos
        key = data[pos]
        if key < 0x80:  # inline one-byte keys: a million tiny fields make this the hot loop
            pos += 1
        else:
            key, pos = _varint(data, pos)
        wire = key & 7
        if wire == _VARINT:
            _, pos = _varint(data, pos)
        elif wire == _FIXED64:
            pos += 8
        elif wire == _FIXED32:
            pos += 4
        elif wire == _LENGTH_DELIMITED:
            if pos < end and data[pos] < 0x80:
                length = data[pos]
                pos += 1
            else:
                length, pos = _varint(data, pos)
            content, pos = pos, pos + length
            field = fields.get(key >> 3)
            if length > PIECE_BYTES and depth < MAX_SPLIT_DEPTH and pos <= end and _splits(field):
                _merge(msg, data, start, field_start)  # what came before it, first
                parse_in_pieces(_sub_message(msg, field), data[content:pos], depth + 1)
                start = pos
                continue
        else:
            raise message.DecodeError(f"wire type {wire} at byte {field_start} is not used by proto3")
        if pos > end:
            raise message.DecodeError(f"truncated message: a field at byte {field_start} runs past the end")
        if pos - start >= PIECE_BYTES:
            _merge(msg, data, start, pos)
            start = pos
    _merge(msg, data, start, end)


def _splits(field) -> bool:
    """Whether a large field is parsed in pieces: message fields are; strings, packed numbers,
    map entries and unknown fields are parsed whole (a copy, not a parse per element)."""
    return field is not None and field.message_type is not None and not field.message_type.GetOptions().map_entry


def _sub_message(msg: message.Message, field) -> message.Message:
    """A new element of a repeated message field, or the singular sub-message."""
    if field.is_repeated:
        return getattr(msg, field.name).add()
    sub = getattr(msg, field.name)
    sub.SetInParent()  # present (and chosen, in a oneof) even if its content turns out empty
    return sub


def _merge(msg: message.Message, data: bytes, start: int, stop: int) -> None:
    if stop > start:
        msg.MergeFromString(data[start:stop] if start or stop < len(data) else data)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    try:
        byte = data[pos]
        if byte < 0x80:  # one byte: nearly every key and small length
            return byte, pos + 1
        value, shift = byte & 0x7F, 7
        while True:
            pos += 1
            byte = data[pos]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value, pos + 1
            shift += 7
            if shift >= 64:
                raise message.DecodeError(f"varint at byte {pos} is longer than 10 bytes")
    except IndexError:
        raise message.DecodeError("truncated message: it ends inside a varint") from None
