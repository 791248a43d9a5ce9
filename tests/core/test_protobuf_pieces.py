"""Parsing in pieces gives what FromString gives, and refuses what it refuses."""

from __future__ import annotations

import pytest
from google.protobuf import message

from citadel.server.protobuf_pieces import PIECE_BYTES, parse_in_pieces
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb


def large_request() -> pb.UpsertVectorsRequest:
    request = pb.UpsertVectorsRequest(collection="films")
    for i in range(60_000):  # many small fields: several pieces at the top level
        request.vectors.add(id=f"v{i}", embedding=[0.5, i])
    big = request.vectors.add(id="big", embedding=[0.25] * 200_000)  # one field larger than a piece
    big.metadata.update({f"k{i}": i for i in range(30_000)})  # split inside the vector, in its Struct
    request.vectors.add(id="after", embedding=[1.0])
    return request


def test_pieces_parse_to_exactly_what_from_string_parses():
    raw = large_request().SerializeToString()
    assert len(raw) > 8 * PIECE_BYTES
    whole = pb.UpsertVectorsRequest.FromString(raw)
    pieces = pb.UpsertVectorsRequest()
    parse_in_pieces(pieces, raw)
    assert pieces == whole
    assert [v.id for v in pieces.vectors[-2:]] == ["big", "after"]
    assert pieces.SerializeToString(deterministic=True) == whole.SerializeToString(deterministic=True)


def test_a_singular_sub_message_is_present_even_when_split():
    request = pb.SearchVectorsRequest(collection="c")
    for i in range(40_000):
        request.filter.must.add().field.key = f"key{i}"
    raw = request.SerializeToString()
    pieces = pb.SearchVectorsRequest()
    parse_in_pieces(pieces, raw)
    assert pieces == pb.SearchVectorsRequest.FromString(raw) and pieces.HasField("filter")


@pytest.mark.parametrize(
    "cut", [lambda raw: raw[:-3], lambda raw: raw[: PIECE_BYTES * 3 + 7], lambda raw: b"\x0b" + raw]
)
def test_broken_messages_are_decode_errors(cut):
    raw = large_request().SerializeToString()
    with pytest.raises(message.DecodeError):
        parse_in_pieces(pb.UpsertVectorsRequest(), cut(raw))


def test_small_messages_are_one_piece():
    vector = resources_pb2.Vector(id="a", embedding=[1, 2, 3])
    parsed = resources_pb2.Vector()
    parse_in_pieces(parsed, vector.SerializeToString())
    assert parsed == vector
