"""Schemathesis against the generated OpenAPI document, sent to a real gateway process.

Every operation gets a bounded number of generated requests (valid and invalid ones: wrong
types, missing fields, odd headers, undeclared methods). What must hold for all of them:

- every built-in check: no 5xx, declared status codes, content types, response schemas and
  headers, 405 with `Allow` for undeclared methods, requests that break the schema rejected,
  and requests that keep to it not refused with a 400 (the document states what the servicers
  enforce: adapters/openapi.py, "Rules");
- every error body is a google.rpc.Status: `code` an int whose HTTP status under the standard
  mapping is the response's, `message` a string, `details` a list of objects with `@type`.

Left out by design, each where it is done:
- deadlines too short to meet (a generated `grpc-timeout: 1n` ends the call with 504, as asked):
  such timeout headers are not sent (`_meetable_deadlines`);
- what depends on the gateway's state, which no document can state: a schema-valid request
  aimed at a seeded collection gets embeddings of that collection's dimension, unique ids and
  index keys, and no page token (tokens come from earlier answers) (`_fit_to_state`);
- what depends on the store behind the gateway: a collection's cluster settings (shards,
  replicas, consistency) are refused by the embedded engine this gateway runs, and its
  write_consistency_factor may not exceed its replication_factor (`_fit_to_state`);
- authentication: this gateway runs without it (see `test_operation`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import grpc
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.core import NOT_SET
from schemathesis.openapi.checks import AllowHeaderMismatch
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    ignored_auth,
    missing_required_header,
)

from citadel.adapters.errors import HTTP_STATUS
from tests.fuzz import seed
from tests.fuzz.budget import RANDOM, examples

OPENAPI = Path(__file__).resolve().parents[2] / "generated" / "citadel" / "openapi.json"
# The committed document is the one the gateway serves at /openapi.json (tests/adapters/test_docs.py
# holds them equal); loading it from disk lets pytest list one test per operation at collection.
schema = schemathesis.openapi.from_path(OPENAPI)
# The gateway runs without authentication: a request without credentials is not a
# schema-violating one here.
schema.config.generation.update(with_security_parameters=False)

TIMEOUT_HEADERS = ("x-request-timeout", "grpc-timeout")
HTTP_STATUS_BY_CODE = {code.value[0]: status for code, status in HTTP_STATUS.items()}
# Statuses the HTTP layer itself answers with, more precise than the table (405, 413).
HTTP_LAYER = {405: grpc.StatusCode.UNIMPLEMENTED.value[0], 413: grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]}


class StatusBodyError(AssertionError):
    """A reply whose body is not the google.rpc.Status its status code calls for."""


def status_body(ctx, response, case) -> None:
    """Every error answer is a google.rpc.Status whose code maps to the HTTP status."""
    if response.status_code < 400:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        raise StatusBodyError(f"{response.status_code} body is not JSON: {response.text[:500]!r}") from None
    if not isinstance(body, dict) or set(body) != {"code", "message", "details"}:
        raise StatusBodyError(f"not a google.rpc.Status: {body!r}")
    code, message, details = body["code"], body["message"], body["details"]
    if not isinstance(code, int) or isinstance(code, bool):
        raise StatusBodyError(f"code is not an int: {body!r}")
    if not isinstance(message, str) or not message:
        raise StatusBodyError(f"message is not a non-empty string: {body!r}")
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and isinstance(d.get("@type"), str) for d in details
    ):
        raise StatusBodyError(f"details is not a list of Any: {body!r}")
    expected = HTTP_STATUS_BY_CODE.get(code)
    if response.status_code in HTTP_LAYER:
        ok = code == HTTP_LAYER[response.status_code]
    else:
        ok = expected == response.status_code
    if not ok:
        raise StatusBodyError(
            f"code {code} maps to HTTP {expected}, but the answer is {response.status_code}"
        )
    if "Traceback" in message:
        raise StatusBodyError(f"message leaks a stack trace: {message!r}")


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Often a path names a seeded collection, vector or job rather than a random one."""
    if not path_parameters:
        return st.just(path_parameters)
    choices = {
        "collection": seed.NAMES,
        "id": (*seed.VECTOR_IDS[:2], *seed.JOB_IDS),
    }
    variants = [path_parameters]
    for name, values in choices.items():
        if name in path_parameters:
            variants += [{**v, name: value} for v in variants for value in values]
    return st.sampled_from(variants)


# Deadlines shorter than this are not sent: the call would end with 504 by design.
MEETABLE_DEADLINE_SECONDS = 1.0
_GRPC_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def _deadline_seconds(name: str, value: str) -> float | None:
    """The deadline a timeout header sets, or None when it sets none (the gateway refuses a
    malformed one with 400, which is no deadline)."""
    try:
        if name == "grpc-timeout":
            return int(value[:-1]) * _GRPC_TIMEOUT_UNITS[value[-1]]
        seconds = float(value)
    except (ValueError, KeyError, IndexError):
        return None
    return seconds if seconds == seconds else None


def _meetable_deadlines(case) -> None:
    if not case.headers:
        return
    for name in [n for n in case.headers if n.lower() in TIMEOUT_HEADERS]:
        seconds = _deadline_seconds(name.lower(), str(case.headers[name]))
        if seconds is not None and 0 <= seconds < MEETABLE_DEADLINE_SECONDS:
            del case.headers[name]


def _unique_by(items: list, key: str) -> list:
    seen, out = set(), []
    for item in items:
        if isinstance(item, dict):
            if item.get(key) in seen:
                continue
            seen.add(item.get(key))
        out.append(item)
    return out


# CollectionLayout fields the embedded engine refuses (FAILED_PRECONDITION): only a Qdrant
# cluster honours them.
CLUSTER_ONLY = ("shardNumber", "replicationFactor", "writeConsistencyFactor", "readConsistency")


def _floats(dimension: int) -> list[float]:
    return [round(0.5 + i / dimension, 3) for i in range(dimension)]


def _dimension(base_url: str, name) -> int | None:
    """The dimension of collection `name` as the gateway has it now (the fuzzer creates some
    too), or None when there is none by that name."""
    if not isinstance(name, str) or not name:
        return None
    reply = requests.get(f"{base_url}/v1/collections/{quote(name, safe='')}", timeout=30)
    return reply.json()["collection"]["dimension"] if reply.status_code == 200 else None


def _fit_to_state(case, base_url: str) -> None:
    """A schema-valid request made to fit the gateway's state (see the module docstring)."""
    if case.query:
        for name in [n for n in case.query if n in ("pageToken", "page_token")]:
            del case.query[name]
    body = case.body if isinstance(case.body, dict) else None
    if body is None:
        return
    body.pop("pageToken", None)
    if isinstance(body.get("indexedFields"), list):
        body["indexedFields"] = _unique_by(body["indexedFields"], "key")
    if isinstance(body.get("layout"), dict):
        for name in CLUSTER_ONLY:
            body["layout"].pop(name, None)
    if isinstance(body.get("vectors"), list):
        body["vectors"] = _unique_by(body["vectors"], "id")
    params = case.path_parameters or {}
    where = params if "collection" in params else body
    dimension = _dimension(base_url, where.get("collection"))
    if dimension is None:
        return
    if body.get("queryText") and dimension != seed.TEXT_DIMENSION:
        where["collection"] = seed.TEXT  # embedded by the default model: its dimension
        return
    # QueryVectors: text is embedded by the text collection's model, keywords are its texts'.
    nearest, hybrid = body.get("nearest"), body.get("hybrid")
    if body.get("keyword") or hybrid or (isinstance(nearest, dict) and nearest.get("text")):
        where["collection"], dimension = seed.TEXT, seed.TEXT_DIMENSION
    for part in (nearest, hybrid):
        if isinstance(part, dict) and part.get("vector"):
            part["vector"] = _floats(dimension)
    if isinstance(hybrid, dict) and hybrid.get("weights"):  # a base64 form may hold negatives
        if hybrid.get("fusion") in ("FUSION_DBSF", 2):
            del hybrid["weights"]
        else:
            hybrid["weights"] = [1.0, 2.0]
    if body.get("queryVector"):
        body["queryVector"] = _floats(dimension)
    if "id" in body:  # InsertVector's vector
        body["embedding"] = _floats(dimension)
    for vector in body.get("vectors", ()):
        if isinstance(vector, dict):
            vector["embedding"] = _floats(dimension)


def _template(path: str) -> re.Pattern[str]:
    return re.compile(
        "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in re.split(r"(\{[^}]+\})", path))
    )


PATH_TEMPLATES = [
    (_template(path), {m.upper() for m in item})
    for path, item in json.loads(OPENAPI.read_text())["paths"].items()
]


def allow_header(ctx, response, case) -> None:
    """`Allow` lists the methods of every template matching the URL. Templates overlap as in
    grpc-gateway (`/v1/jobs/0:cancel` is also `GET /v1/jobs/{id}` with id `0:cancel`), so a method
    documented for another template that matches the same URL is not undocumented."""
    try:
        allow_header_conformance(ctx, response, case)
    except AllowHeaderMismatch as e:
        path = urlsplit(response.request.url).path
        elsewhere = set().union(*(methods for t, methods in PATH_TEMPLATES if t.fullmatch(path)))
        if e.missing_methods or not set(e.undocumented_methods) <= elsewhere:
            raise


@schema.parametrize()
@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not RANDOM,
    database=None,
)
def test_operation(case, fuzz_gateway):
    _meetable_deadlines(case)
    if case.meta is not None and case.meta.generation.mode.is_positive:
        if case.body is NOT_SET and case.operation.definition.raw.get("requestBody", {}).get("required"):
            # schemathesis' coverage phase sends no body where it cannot build one (DeleteVectors'
            # combined rules) although the document requires one: not a schema-valid request.
            return
        _fit_to_state(case, fuzz_gateway.http_url)
    case.call_and_validate(
        base_url=fuzz_gateway.http_url,
        timeout=30,
        # allow_header_conformance is replaced by allow_header above. This gateway runs without
        # authentication, so the bearer scheme the document declares is not enforced here
        # (tests/interceptors/test_auth_matrix.py covers it on every RPC and protocol); these
        # two are not "schema-valid request rejected" cases.
        excluded_checks=[allow_header_conformance, ignored_auth, missing_required_header],
        additional_checks=[status_body, allow_header],
    )
