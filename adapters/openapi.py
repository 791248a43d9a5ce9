"""The OpenAPI 3.1 document, generated from the HTTP bindings, field types and proto comments.

Schemas describe the proto3 JSON forms the REST adapter reads and writes (64-bit integers as
strings, enums by name, Timestamp as date-time, `repeated float` as an array or base64
float32). Field behaviours map to `required` (REQUIRED), `readOnly` (OUTPUT_ONLY) and
`writeOnly` (INPUT_ONLY). What the servicers refuse beyond the types is stated too (see
"Rules" below), read from the validators' own constants, so a client or a fuzzer that keeps to
the document is not refused a 400. Output is deterministic: `render` sorts keys, so the copy
`make generate` writes under generated/ is byte-reproducible and drift-checked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor
from google.rpc import status_pb2

from citadel.adapters import json_codec, query
from citadel.adapters.bindings import Binding, bindings_for
from citadel.adapters.descriptions import Descriptions, summary
from citadel.adapters.json_codec import FD, WELL_KNOWN, WRAPPERS, is_float_list, is_map, real_oneof
from citadel.adapters.streaming import NDJSON, SSE
from citadel.batch.v1 import batch_service_pb2
from citadel.server.auth.principal import ROLE_NAMES
from citadel.server.methods import MethodSpec
from citadel.server.servicers import batch as batch_servicer
from citadel.server.servicers import collection_layout as layout
from citadel.server.servicers import query_plan
from citadel.server.servicers import validation as check
from citadel.server.servicers import vector as vector_servicer
from citadel.server.store.base import RESERVED_PAYLOAD_KEY
from citadel.vector.v1 import resources_pb2, vector_service_pb2

STATUS = status_pb2.Status.DESCRIPTOR
_REF = "#/components/schemas/"
_PARAM_REF = "#/components/parameters/"

# Written as strings; read as strings or JSON integers.
_INT64 = {"type": ["string", "integer"], "pattern": "^-?[0-9]+$", "format": "int64"}
_UINT64 = {"type": ["string", "integer"], "pattern": "^[0-9]+$", "minimum": 0, "format": "uint64"}
_SCALARS: dict[int, dict[str, Any]] = {
    FD.TYPE_DOUBLE: {"type": "number", "format": "double"},
    # JSON numbers past float32's range are refused (json_codec), not rounded to infinity.
    FD.TYPE_FLOAT: {
        "type": "number",
        "format": "float",
        "minimum": -json_codec._FLOAT32_MAX,
        "maximum": json_codec._FLOAT32_MAX,
    },
    FD.TYPE_INT64: _INT64,
    FD.TYPE_SINT64: _INT64,
    FD.TYPE_SFIXED64: _INT64,
    FD.TYPE_UINT64: _UINT64,
    FD.TYPE_FIXED64: _UINT64,
    FD.TYPE_INT32: {"type": "integer", "format": "int32"},
    FD.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FD.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FD.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0, "maximum": 4294967295},
    FD.TYPE_FIXED32: {"type": "integer", "format": "uint32", "minimum": 0, "maximum": 4294967295},
    FD.TYPE_BOOL: {"type": "boolean"},
    FD.TYPE_STRING: {"type": "string"},
    FD.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
}
_WELL_KNOWN_SCHEMAS: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
        "description": "Seconds with up to 9 decimals and an 's' suffix, e.g. \"1.5s\".",
    },
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated lowerCamelCase field paths.",
    },
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
}
FLOATS_BASE64 = {
    "type": "string",
    "contentEncoding": "base64",
    # A whole number of float32s: 12 bytes are 16 characters; 4 or 8 more end in 6 or 11 and
    # their padding, which may be left out (json_codec.bytes_from_base64 pads).
    "pattern": "^(?:[A-Za-z0-9+/]{16})*(?:[A-Za-z0-9+/]{6}(?:==)?|[A-Za-z0-9+/]{11}=?)?$"
    "|^(?:[A-Za-z0-9_-]{16})*(?:[A-Za-z0-9_-]{6}(?:==)?|[A-Za-z0-9_-]{11}=?)?$",
    "description": "The values as base64 of little-endian float32 (4 bytes each).",
}

# -- Rules: what the servicers refuse beyond the proto types ---------------------------------
#
# Each value comes from the constant the validator checks against (server/servicers/), so the
# two cannot drift; tests/adapters/test_openapi_rules.py sends values just inside and just
# outside each one to a real gateway. Limits that are settings (limits.embed_texts_per_call,
# limits.vectors_per_upsert ...) are not here: the document is the same whatever the config.
# The right home for most of these would be a field option in options.proto
# ((citadel.options.v1.field) = {max_length: ..., pattern: ...}), read by the servicers too.


def _set(name: str) -> dict[str, Any]:
    """The field `name` is set: present and not null (null is "not set" in proto3 JSON)."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _set_as(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}, **schema}}}


def _anchored(pattern: str) -> str:
    """A whole-string match in every dialect: Python's `$` also matches before a final newline
    (so a generator may append one), the lookahead does not."""
    return f"^(?:{pattern})(?![\\s\\S])"


# Python's whitespace, spelled out: what str.strip() removes (a blank text is refused), in a form
# every regex dialect reads the same way (ECMA's \s and Python's differ).
_SPACE = "".join(f"\\u{c:04x}" for c in range(0x10000) if chr(c).isspace())
NOT_BLANK = f"[^{_SPACE}]"
EMPTY_OR_NOT_BLANK = f"^$|{NOT_BLANK}"

COLLECTION_NAME = {"pattern": _anchored(check._NAME.pattern)}
VECTOR_ID = {"minLength": 1, "maxLength": check.MAX_ID_LENGTH}
WORDS = {"pattern": NOT_BLANK, "maxLength": check.MAX_WORDS_CHARS}  # check.words
METADATA_PATH = {
    "pattern": _anchored(check._PATH.pattern),
    "not": {"pattern": f'^"?{RESERVED_PAYLOAD_KEY}'},
}


def _page(maximum: int) -> dict[str, Any]:
    """check.bounded: 0 takes the default, otherwise 1..maximum."""
    return {"minimum": 0, "maximum": maximum}


def _between(bounds: tuple[float, float]) -> dict[str, Any]:
    return {"minimum": bounds[0], "maximum": bounds[1]}


_V = "citadel.vector.v1."
_B = "citadel.batch.v1."
# Keywords added to a field's schema, by the field's full name. On a repeated field, `items`
# is merged into the item schema; `minItems` on a `repeated float` also asks its base64 form
# for at least one value.
FIELD_RULES: dict[str, dict[str, Any]] = {
    _V + "Collection.dimension": {"minimum": 1, "maximum": check.MAX_DIMENSION},
    _V + "Collection.description": {"maxLength": vector_servicer.MAX_DESCRIPTION},
    _V + "CollectionLayout.shard_number": _between(layout.SHARD_NUMBER),
    _V + "CollectionLayout.replication_factor": _between(layout.REPLICATION_FACTOR),
    _V + "CollectionLayout.write_consistency_factor": _between((1, layout.REPLICATION_FACTOR[1])),
    _V + "HnswLayout.m": _between(layout.HNSW_M),
    _V + "HnswLayout.ef_construct": _between(layout.HNSW_EF_CONSTRUCT),
    _V + "QuantizationLayout.oversampling": _between(layout.OVERSAMPLING),
    _V + "IndexedField.key": METADATA_PATH,
    _V + "FieldCondition.key": METADATA_PATH,
    _V + "Vector.id": VECTOR_ID,
    _V + "Vector.embedding": {"minItems": 1},
    _V + "Vector.metadata": {"propertyNames": {"not": {"pattern": f"^{RESERVED_PAYLOAD_KEY}"}}},
    _V + "GetVectorRequest.id": VECTOR_ID,
    _V + "VectorIds.ids": {"minItems": 1, "items": VECTOR_ID},
    _V + "HasIdCondition.ids": {"minItems": 1, "items": VECTOR_ID},
    _V + "StringList.values": {"minItems": 1},
    _V + "IntegerList.values": {"minItems": 1},
    _V + "ListCollectionsRequest.page_size": _page(vector_servicer.MAX_LIMIT),
    _V + "ScrollVectorsRequest.page_size": _page(vector_servicer.MAX_LIMIT),
    _V + "SearchVectorsRequest.limit": _page(vector_servicer.MAX_LIMIT),
    _V + "SearchVectorsRequest.offset": {"maximum": vector_servicer.MAX_OFFSET},
    _V + "SearchVectorsRequest.query_text": {"pattern": EMPTY_OR_NOT_BLANK},
    _V + "GenerateEmbeddingRequest.text": {"pattern": EMPTY_OR_NOT_BLANK},
    _V + "QueryVectorsRequest.limit": _page(vector_servicer.MAX_LIMIT),
    _V + "QueryVectorsRequest.offset": {"maximum": vector_servicer.MAX_OFFSET},
    _V + "NearestQuery.text": {"pattern": EMPTY_OR_NOT_BLANK},
    _V + "KeywordQuery.text": WORDS,
    _V + "HybridQuery.text": WORDS,
    _V + "HybridQuery.candidates": _page(query_plan.MAX_CANDIDATES),
    _V + "HybridQuery.weights": {"minItems": 2, "maxItems": 2, "items": {"minimum": 0}},
    _V + "RecommendQuery.positive_ids": {
        "minItems": 1,
        "maxItems": query_plan.MAX_EXAMPLES,
        "items": VECTOR_ID,
    },
    _V + "RecommendQuery.negative_ids": {"maxItems": query_plan.MAX_EXAMPLES, "items": VECTOR_ID},
    _V + "Mmr.diversity": {"minimum": 0, "maximum": 1},
    _V + "Mmr.candidates": {"maximum": query_plan.MAX_CANDIDATES},
    _V + "GroupBy.key": METADATA_PATH,
    _V + "GroupBy.group_size": _page(query_plan.MAX_GROUP_SIZE),
    _V + "FacetVectorsRequest.key": METADATA_PATH,
    _V + "FacetVectorsRequest.limit": _page(vector_servicer.MAX_LIMIT),
    _V + "TextMatchCondition.query": WORDS,
    _V + "Match.text": {"pattern": EMPTY_OR_NOT_BLANK, "maxLength": check.MAX_WORDS_CHARS},
    _V + "Match.phrase": {"pattern": EMPTY_OR_NOT_BLANK, "maxLength": check.MAX_WORDS_CHARS},
    _V + "GenerateEmbeddingRequest.texts": {"items": {"pattern": NOT_BLANK}},
    _B + "SubmitBatchJobRequest.items": {"maxItems": batch_servicer.MAX_INLINE_ITEMS},
    _B + "SubmitBatchJobRequest.idempotency_key": {"maxLength": batch_servicer.MAX_KEY_LENGTH},
    # batch.py checks ListBatchJobs' page size against a literal equal to vector.MAX_LIMIT;
    # test_openapi_rules.py holds the two together.
    _B + "ListBatchJobsRequest.page_size": _page(vector_servicer.MAX_LIMIT),
}

# Lists that must hold an item though the proto does not say REQUIRED: left out, they are empty.
NEEDED = frozenset(
    {_V + "VectorIds.ids", _V + "HasIdCondition.ids", _V + "StringList.values", _V + "IntegerList.values"}
)
# REQUIRED fields a request may still leave out: a batch item without an id fails alone, listed
# in the job's errors, as every bad item does.
CHECKED_LATER = frozenset({_B + "BatchItem.id"})
# Oneofs whose servicer refuses a request that sets none of their members (a proto oneof
# cannot say so itself); any other oneof may be left empty.
REQUIRED_ONEOFS = frozenset(
    {
        _V + "DeleteVectorsRequest.selector",
        _V + "Condition.condition",
        _V + "Match.value",
        _V + "QueryVectorsRequest.ranking",
    }
)
_EMBED = batch_service_pb2.Operation.Name(batch_service_pb2.OPERATION_EMBED)
_REEMBED = batch_service_pb2.Operation.Name(batch_service_pb2.OPERATION_REEMBED)
_HAS_CONDITIONS = "citadel.vector.v1.Filter.HasConditions"
_HAS_TEST = "citadel.vector.v1.Condition.HasTest"
# Rules across fields, by message: each is one more schema the object must match (`allOf`).
MESSAGE_RULES: dict[str, list[dict[str, Any]]] = {
    _V + "FieldCondition": [
        _set("key"),
        {"anyOf": [_set("match"), _set("range")]},
    ],
    _V + "Range": [{"anyOf": [_set(bound) for bound in ("lt", "gt", "lte", "gte")]}],
    # query_vector or query_text, not both; `model` names query_text's model only.
    _V + "SearchVectorsRequest": [
        {
            "oneOf": [
                _set_as("queryVector", {"minItems": 1, "minLength": 1}),
                _set_as("queryText", {"minLength": 1}),
            ]
        },
        {
            "if": _set_as("queryVector", {"minItems": 1, "minLength": 1}),
            "then": {"properties": {"model": {"maxLength": 0}}},
        },
    ],
    _V + "NearestQuery": [
        {"oneOf": [_set_as("vector", {"minItems": 1, "minLength": 1}), _set_as("text", {"minLength": 1})]}
    ],
    # MMR re-ranks by the dense query; weights apply to RRF only.
    _V + "QueryVectorsRequest": [{"if": _set("mmr"), "then": {"anyOf": [_set("nearest"), _set("hybrid")]}}],
    _V + "HybridQuery": [
        {
            "if": _set_as("fusion", {"enum": ["FUSION_DBSF", vector_service_pb2.FUSION_DBSF]}),
            "then": {"properties": {"weights": {"maxItems": 0, "maxLength": 0}}},
        }
    ],
    # Oversampling rescoring applies to quantized vectors only.
    _V + "QuantizationLayout": [
        {
            "if": _set_as("type", {"enum": ["QUANTIZATION_NONE", resources_pb2.QUANTIZATION_NONE]}),
            "then": {"properties": {"oversampling": {"type": "null"}}},
        }
    ],
    _V + "GenerateEmbeddingRequest": [
        {
            "oneOf": [
                _set_as("text", {"minLength": 1}),
                _set_as("texts", {"minItems": 1}),
            ]
        }
    ],
    # A filter without conditions matches every vector: deleting by one needs allow_all.
    _V + "DeleteVectorsRequest": [
        {
            "anyOf": [
                {"not": _set("filter")},
                _set_as("allowAll", {"const": True}),
                {"properties": {"filter": {"$ref": _REF + _HAS_CONDITIONS}}},
            ]
        }
    ],
    # Embed jobs keep their embeddings in the job and name no collection; the others need one.
    _B + "SubmitBatchJobRequest": [
        {
            "if": _set_as("operation", {"enum": [_EMBED, batch_service_pb2.OPERATION_EMBED]}),
            "then": {"properties": {"collection": {"maxLength": 0}}},
            "else": _set_as("collection", COLLECTION_NAME),
        },
        # A re-embed's items are the collection's vectors, and it names the model it moves to;
        # every other job brings its own items.
        {
            "if": _set_as("operation", {"enum": [_REEMBED, batch_service_pb2.OPERATION_REEMBED]}),
            "then": {"properties": {"items": {"maxItems": 0}}, **_set_as("model", {"minLength": 1})},
            "else": _set_as("items", {"minItems": 1}),
        },
    ],
}
# check.has_conditions: a field or id condition at some depth.
RULE_SCHEMAS: dict[str, dict[str, Any]] = {
    _HAS_CONDITIONS: {
        "description": "A filter that tests something: a field or id condition, at any depth.",
        "anyOf": [
            _set_as(clause, {"contains": {"$ref": _REF + _HAS_TEST}})
            for clause in ("must", "should", "mustNot")
        ],
    },
    _HAS_TEST: {
        "description": "A condition on a field or on ids, or a filter that has one.",
        "anyOf": [
            _set("field"),
            _set("hasId"),
            _set_as("filter", {"$ref": _REF + _HAS_CONDITIONS}),
        ],
    },
}

PARAMETERS = {
    "RequestTimeout": {
        "name": "X-Request-Timeout",
        "in": "header",
        "description": "Deadline for the call, in seconds; past it the call fails with DEADLINE_EXCEEDED (504).",
        "schema": {"type": "number", "exclusiveMinimum": 0},
    },
    "GrpcTimeout": {
        "name": "grpc-timeout",
        "in": "header",
        "description": "Deadline in gRPC's format (digits and a unit H, M, S, m, u or n: `500m`). "
        "With X-Request-Timeout too, the sooner one applies.",
        "schema": {"type": "string", "pattern": "^[0-9]{1,8}[HMSmun]$"},
    },
    "RequestId": {
        "name": "X-Request-Id",
        "in": "header",
        "description": "Request id to log and echo back; one is generated when absent. A longer one is "
        "cut to its first 128 characters.",
        "schema": {"type": "string"},
    },
    "FloatEncoding": {
        "name": query.FLOAT_ENCODING,
        "in": "query",
        "description": "How `repeated float` fields (embeddings) of the response are written: `json` arrays "
        "(default) or `base64` of little-endian float32, which is smaller and exact. The header "
        "`X-Float-Encoding` does the same. Requests accept either form at any time.",
        "schema": {"type": "string", "enum": ["json", "base64"], "default": "json"},
    },
}

SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`citadel keys create`) or a JWT, sent as `Authorization: Bearer <key>`. "
        "Each operation says the least role it needs (reader < writer < admin); a key with a tenant "
        "sees only that tenant's collections and jobs. A gateway run with --insecure-no-auth ignores it.",
    }
}

DESCRIPTION = """Generated from the protos: every RPC of the gRPC API, transcoded by its google.api.http rule.

- Bodies and responses use the proto3 JSON mapping: lowerCamelCase or original field names are \
accepted, 64-bit integers are strings, enums are names, unknown fields are rejected.
- Errors are google.rpc.Status JSON (`code`, `message`, `details`), with the HTTP status of the \
standard gRPC mapping (INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, \
NOT_FOUND 404, ALREADY_EXISTS 409, RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, DEADLINE_EXCEEDED 504).
- `Authorization`, `x-*` and `Grpc-Metadata-*` headers are passed on as gRPC metadata; \
X-Request-Timeout or grpc-timeout sets the deadline; every response carries X-Request-Id.
- Server-streaming methods answer NDJSON (`application/x-ndjson`, default) or Server-Sent Events \
(`Accept: text/event-stream`); the last item is always the final google.rpc.Status.
"""


class OpenApiBuilder:
    def __init__(
        self, specs: Sequence[MethodSpec], descriptions: Descriptions, title: str = "Citadel"
    ) -> None:
        self.specs = [s for s in specs if not s.client_streaming]  # HTTP has no client streams
        self.docs = descriptions
        self.title = title
        self.schemas: dict[str, Any] = {}
        # Fields naming a collection (the methods' access.collection_field) that must be set:
        # they get the collection-name pattern. An optional one (SubmitBatchJob's) has a
        # MESSAGE_RULES entry saying when it is needed.
        self.collection_fields = set()
        for spec in self.specs:
            if spec.access.collection_field:
                field = _field_at(spec.descriptor.input_type, spec.access.collection_field)
                if _behaviors(field) & {field_behavior_pb2.REQUIRED, field_behavior_pb2.IDENTIFIER}:
                    self.collection_fields.add(field.full_name)

    def build(self) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        tags = {}
        for spec in self.specs:
            service = spec.descriptor.containing_service
            tags[service.name] = {"name": service.name, "description": self.docs.of(service.full_name)}
            for binding in bindings_for(spec):
                item = paths.setdefault(binding.template.openapi_path(), {})
                item[binding.http_method.lower()] = self._operation(binding)
        self._message_schema(STATUS)
        packages = sorted({spec.descriptor.containing_service.file.package for spec in self.specs})
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": ", ".join(packages), "description": DESCRIPTION},
            "tags": sorted(tags.values(), key=lambda t: t["name"]),
            "paths": paths,
            "components": {
                "schemas": self.schemas,
                "parameters": PARAMETERS,
                "securitySchemes": SECURITY_SCHEMES,
            },
            "security": [{"bearer": []}],
        }

    # -- operations ---------------------------------------------------------------------

    def _operation(self, b: Binding) -> dict[str, Any]:
        spec = b.spec
        method = spec.descriptor
        doc = self.docs.of(f"{spec.service}.{spec.name}")
        role = ROLE_NAMES[spec.access.role]
        op: dict[str, Any] = {
            "operationId": f"{method.containing_service.name}_{spec.name}"
            + (f"_{b.index + 1}" if b.index else ""),
            "tags": [method.containing_service.name],
            "summary": summary(doc) or spec.name,
            "description": f"{doc}\n\nNeeds role: {role}.".strip(),
            "x-citadel-role": role,
            "parameters": self._path_parameters(b) + self._query_parameters(b) + self._common_parameters(b),
            "responses": {
                "200": self._success(b),
                "default": {
                    "description": "The call failed: a google.rpc.Status.",
                    "content": {"application/json": {"schema": {"$ref": _REF + STATUS.full_name}}},
                },
            },
        }
        if b.body:
            schema = self._body_schema(b)
            op["requestBody"] = {"content": {"application/json": {"schema": schema}}}
            if self._needs_fields(schema):  # no body is the empty message, refused as `{}` is
                op["requestBody"]["required"] = True
        return op

    def _needs_fields(self, schema: dict[str, Any]) -> bool:
        """Whether an object schema refuses `{}`: it requires a field, directly or by a rule."""
        if "$ref" in schema:
            schema = self.schemas.get(schema["$ref"].removeprefix(_REF), {})
        rules = schema.get("allOf", [])
        return bool(schema.get("required")) or any(
            "oneOf" in r and all(alt.get("required") for alt in r["oneOf"]) for r in rules
        )

    def _path_parameters(self, b: Binding) -> list[dict[str, Any]]:
        out = []
        wildcard = 0
        for seg in b.template.segments:
            if isinstance(seg, str):
                if seg in ("*", "**"):
                    out.append(
                        {
                            "name": f"_wildcard{wildcard}",
                            "in": "path",
                            "required": True,
                            "description": "Any segment; not mapped to a field.",
                            "schema": {"type": "string"},
                        }
                    )
                    wildcard += 1
                continue
            field = _field_at(b.spec.descriptor.input_type, seg.field_path)
            schema = self._rules(field, dict(self._scalar_or_ref(field)))
            pattern = "/".join(seg.segments)
            text = self._field_doc(field)
            if pattern != "*":
                text = f"{text}\n\nMatches `{pattern}` (may contain '/').".strip()
            out.append(
                {
                    "name": seg.field_path,
                    "in": "path",
                    "required": True,
                    "description": text,
                    "schema": schema,
                }
            )
        return out

    def _query_parameters(self, b: Binding) -> list[dict[str, Any]]:
        if b.body == "*":
            return []
        out: list[dict[str, Any]] = []
        self._collect_query(
            b.spec.descriptor.input_type, "", "", b.owned_fields, out, (b.spec.descriptor.input_type,)
        )
        return out

    def _collect_query(self, msg, prefix, proto_prefix, owned, out, stack) -> None:
        for field in msg.fields:
            proto_path = proto_prefix + field.name
            if any(proto_path == p or p.startswith(proto_path + ".") for p in owned):
                if field.cpp_type == FD.CPPTYPE_MESSAGE and not field.is_repeated and proto_path not in owned:
                    self._collect_query(
                        field.message_type, f"{prefix}{field.json_name}.", f"{proto_path}.", owned, out, stack
                    )
                continue
            name = prefix + field.json_name
            param: dict[str, Any] = {"name": name, "in": "query", "description": self._field_doc(field)}
            if is_map(field):
                value_field = field.message_type.fields_by_name["value"]
                if (
                    value_field.cpp_type == FD.CPPTYPE_MESSAGE
                    and value_field.message_type.full_name not in query.TEXT_WELL_KNOWN
                ):
                    continue
                param.update(
                    style="deepObject",
                    explode=True,
                    schema={"type": "object", "additionalProperties": self._scalar_or_ref(value_field)},
                )
            elif field.cpp_type == FD.CPPTYPE_MESSAGE:
                full = field.message_type.full_name
                if field.is_repeated or (full in WELL_KNOWN and full not in query.TEXT_WELL_KNOWN):
                    continue
                if full not in WELL_KNOWN:
                    if field.message_type not in stack:  # recursive types: one level only
                        self._collect_query(
                            field.message_type,
                            f"{name}.",
                            f"{proto_path}.",
                            owned,
                            out,
                            (*stack, field.message_type),
                        )
                    continue
                param["schema"] = self._field_schema(field)
            elif field.is_repeated:
                param.update(
                    style="form", explode=True, schema={"type": "array", "items": self._scalar_or_ref(field)}
                )
            else:
                param["schema"] = self._rules(field, dict(self._scalar_or_ref(field)))
            out.append(param)

    def _common_parameters(self, b: Binding) -> list[dict[str, Any]]:
        refs = ["RequestTimeout", "GrpcTimeout", "RequestId"]
        response = (
            b.response_field.message_type if b.response_field is not None else b.spec.descriptor.output_type
        )
        if (b.response_field is not None and is_float_list(b.response_field)) or (
            response is not None and _has_float_list(response, set())
        ):
            refs.append("FloatEncoding")
        return [{"$ref": _PARAM_REF + r} for r in refs]

    def _body_schema(self, b: Binding) -> dict[str, Any]:
        request = b.spec.descriptor.input_type
        if b.body != "*":
            return self._field_schema(b.body_field)
        top_level_path_fields = {p for p in b.path_fields if "." not in p}
        if not top_level_path_fields:
            return {"$ref": _REF + self._message_schema(request)}
        schema = self._object_schema(request, exclude=top_level_path_fields)
        schema["description"] = (
            f"{request.name} without the fields taken from the path ({', '.join(sorted(top_level_path_fields))})."
        )
        return schema

    def _success(self, b: Binding) -> dict[str, Any]:
        spec = b.spec
        output = spec.descriptor.output_type
        schema = (
            self._field_schema(b.response_field)
            if b.response_field is not None
            else {"$ref": _REF + self._message_schema(output)}
        )
        headers = {"X-Request-Id": {"description": "The request id.", "schema": {"type": "string"}}}
        if not spec.server_streaming:
            return {
                "description": output.name,
                "headers": headers,
                "content": {"application/json": {"schema": schema}},
            }
        line = {
            "type": "object",
            "description": 'One line per message: {"result": ...}; the last line is {"status": ...}.',
            "properties": {"result": schema, "status": {"$ref": _REF + STATUS.full_name}},
        }
        sse = {
            "type": "string",
            "description": "Server-Sent Events: each message as `data: <json>`, then "
            "`event: status` with the final google.rpc.Status.",
        }
        return {
            "description": f"A stream of {output.name}",
            "headers": headers,
            "content": {NDJSON: {"schema": line}, SSE: {"schema": sse}},
        }

    # -- schemas ------------------------------------------------------------------------

    def _message_schema(self, msg: descriptor.Descriptor) -> str:
        """Registers the message (and what it references) and returns its component name."""
        name = msg.full_name
        if name not in self.schemas:
            # Registered before it is built, so a message that refers to itself finds its name.
            self.schemas[name] = {}
            self.schemas[name] = self._object_schema(msg)
        return name

    def _object_schema(self, msg: descriptor.Descriptor, exclude: set[str] = frozenset()) -> dict[str, Any]:
        if msg.full_name in _WELL_KNOWN_SCHEMAS:
            return dict(_WELL_KNOWN_SCHEMAS[msg.full_name])
        properties = {}
        required = []
        oneofs: dict[str, list[str]] = {}
        for field in msg.fields:
            if field.name in exclude:
                continue
            schema = self._field_schema(field)
            if (
                field_behavior_pb2.REQUIRED in _behaviors(field) and field.full_name not in CHECKED_LATER
            ) or field.full_name in self.collection_fields | NEEDED:
                required.append(field.json_name)
            else:  # null is "not set" in proto3 JSON
                schema = _nullable(schema)
            properties[field.json_name] = schema
            oneof = real_oneof(field)
            if oneof is not None:
                oneofs.setdefault(oneof.name, []).append(field.json_name)
        # Unknown fields are refused (json_codec), so the document says so.
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        text = self.docs.of(msg.full_name)
        rules = []
        for oneof_name, members in oneofs.items():
            listed = ", ".join(f"`{m}`" for m in members)
            one_each = [_set(m) for m in members]
            if f"{msg.full_name}.{oneof_name}" in REQUIRED_ONEOFS:
                text += f"\n\nExactly one of {listed} (oneof `{oneof_name}`)."
                rules.append({"oneOf": one_each})
            else:
                text += f"\n\nAt most one of {listed} (oneof `{oneof_name}`)."
                rules.append({"oneOf": [*one_each, {"not": {"anyOf": one_each}}]})
        for rule in MESSAGE_RULES.get(msg.full_name, ()):
            rules.append(rule)
            for ref in _refs(rule):
                if ref in RULE_SCHEMAS:
                    self.schemas.setdefault(ref, RULE_SCHEMAS[ref])
        if text.strip():
            schema["description"] = text.strip()
        if required:
            schema["required"] = required
        if rules:
            schema["allOf"] = rules
        return schema

    def _field_schema(self, field: descriptor.FieldDescriptor) -> dict[str, Any]:
        if is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            schema: dict[str, Any] = {
                "type": "object",
                "additionalProperties": self._scalar_or_ref(value_field),
            }
        elif is_float_list(field):
            schema = {"oneOf": [{"type": "array", "items": self._scalar_or_ref(field)}, FLOATS_BASE64]}
        elif field.is_repeated:
            schema = {"type": "array", "items": self._scalar_or_ref(field)}
        else:
            schema = dict(self._scalar_or_ref(field))
        schema = self._rules(field, schema)
        text = self._field_doc(field)
        if text:
            schema["description"] = text
        behaviors = _behaviors(field)
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            schema["readOnly"] = True
        if field_behavior_pb2.INPUT_ONLY in behaviors:
            schema["writeOnly"] = True
        return schema

    def _rules(self, field: descriptor.FieldDescriptor, schema: dict[str, Any]) -> dict[str, Any]:
        """`schema` with what the servicers refuse: FIELD_RULES, the collection-name pattern,
        and what REQUIRED means for the value (an enum other than its zero, a list with an
        item; a REQUIRED string's rule is its own, as a batch item's empty id fails alone)."""
        rules = dict(FIELD_RULES.get(field.full_name, {}))
        if field.full_name in self.collection_fields:
            rules.update(COLLECTION_NAME)
        required = field_behavior_pb2.REQUIRED in _behaviors(field)
        if required and field.is_repeated and not is_map(field):
            rules.setdefault("minItems", 1)
        if required and field.cpp_type == FD.CPPTYPE_ENUM and not field.is_repeated:
            zero = field.enum_type.values_by_number[0]
            rules["not"] = {"enum": [zero.name, zero.number]}
        if not rules:
            return schema
        if is_float_list(field):  # an array or base64: a count is a length in the latter
            array, base64 = (dict(s) for s in schema["oneOf"])
            if "minItems" in rules:
                array["minItems"] = rules["minItems"]
                base64["minLength"] = rules["minItems"]
            for key in ("maxItems", "items"):  # the array's; base64 values are checked later
                if key in rules:
                    array[key] = {**array.get(key, {}), **rules[key]} if key == "items" else rules[key]
            return {**schema, "oneOf": [array, base64]}
        if field.is_repeated and not is_map(field):
            items = {**schema["items"], **rules.pop("items", {})}
            return {**schema, **rules, "items": items}
        return {**schema, **rules}

    def _scalar_or_ref(self, field: descriptor.FieldDescriptor) -> dict[str, Any]:
        if field.cpp_type == FD.CPPTYPE_ENUM:
            return {"$ref": _REF + self._enum_schema(field.enum_type)}
        if field.cpp_type != FD.CPPTYPE_MESSAGE:
            return dict(_SCALARS[field.type])
        msg = field.message_type
        if msg.full_name in WRAPPERS:
            inner = dict(self._scalar_or_ref(msg.fields_by_name["value"]))
            inner["type"] = [inner["type"], "null"]
            return inner
        if msg.full_name in _WELL_KNOWN_SCHEMAS:
            return dict(_WELL_KNOWN_SCHEMAS[msg.full_name])
        return {"$ref": _REF + self._message_schema(msg)}

    def _enum_schema(self, enum: descriptor.EnumDescriptor) -> str:
        name = enum.full_name
        if name not in self.schemas:
            lines = [self.docs.of(name)] if self.docs.of(name) else []
            for v in enum.values:
                lines.append(f"- `{v.name}`: {self.docs.of(f'{name}.{v.name}')}".rstrip(": "))
            lines.append("Requests may give the number instead of the name.")
            self.schemas[name] = {
                "type": ["string", "integer"],
                "enum": [v.name for v in enum.values] + [v.number for v in enum.values],
                "description": "\n".join(lines),
            }
        return name

    def _field_doc(self, field: descriptor.FieldDescriptor) -> str:
        return self.docs.of(field.full_name)


def _field_at(msg: descriptor.Descriptor, path: str) -> descriptor.FieldDescriptor:
    *parents, leaf = path.split(".")
    for name in parents:
        msg = msg.fields_by_name[name].message_type
    return msg.fields_by_name[leaf]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` that also admits null."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    if "$ref" in schema or "oneOf" in schema:
        value = {k: v for k, v in schema.items() if k in ("$ref", "oneOf")}
        rest = {k: v for k, v in schema.items() if k not in ("$ref", "oneOf")}
        return {**rest, "anyOf": [value, {"type": "null"}]}
    return schema  # any JSON value (google.protobuf.Value): null included


def _behaviors(field: descriptor.FieldDescriptor) -> set[int]:
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def _refs(value: Any) -> list[str]:
    """Component names a schema refers to, at any depth."""
    if isinstance(value, dict):
        found = [value["$ref"].removeprefix(_REF)] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _has_float_list(msg: descriptor.Descriptor, seen: set[str]) -> bool:
    if msg.full_name in seen or msg.full_name in WELL_KNOWN:
        return False
    seen.add(msg.full_name)
    for field in msg.fields:
        if is_float_list(field):
            return True
        if field.message_type is not None and _has_float_list(field.message_type, seen):
            return True
    return False


def build(specs: Sequence[MethodSpec], descriptions: Descriptions) -> dict[str, Any]:
    return OpenApiBuilder(specs, descriptions).build()


def render(document: dict[str, Any]) -> str:
    """Deterministic text: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
