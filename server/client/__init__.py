"""Citadel's Python SDK.

The messages and stubs are generated from proto/ by betterproto2 into `citadel.sdk` (typed
dataclasses; `google.protobuf.Timestamp` fields are `datetime`s, `Struct`s convert with
`Struct.from_dict` / `to_dict`). This package adds the connection: a `Client` whose calls carry
the API key and a timeout, and exceptions that carry the gRPC status.

    from citadel.client import Client, NotFound, vector

    with Client("localhost:8081", api_key="...", timeout=10) as citadel:
        citadel.vector.create_collection(vector.CreateCollectionRequest(
            collection=vector.Collection(name="films", dimension=3, distance=vector.Distance.COSINE)))
        hits = citadel.vector.search_vectors(
            vector.SearchVectorsRequest(collection="films", query_vector=[1, 0, 0], limit=3)).results
"""

from citadel.client.client import DEFAULT_TARGET, Client
from citadel.client.errors import (
    AlreadyExists,
    Cancelled,
    CitadelError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from citadel.sdk.citadel.admin import v1 as admin
from citadel.sdk.citadel.batch import v1 as batch
from citadel.sdk.citadel.vector import v1 as vector
from citadel.sdk.google import protobuf

__all__ = [
    "DEFAULT_TARGET",
    "AlreadyExists",
    "Cancelled",
    "CitadelError",
    "Client",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "admin",
    "batch",
    "protobuf",
    "vector",
]
