"""Schemathesis against the generated OpenAPI document, sent to a real gateway process.

Every operation gets a bounded number of generated requests (valid and invalid ones: wrong
types, missing fields, odd headers, undeclared methods). What must hold for all of them:

- no 5xx, except 504 DEADLINE_EXCEEDED for a request that set its own (tiny) deadline;
- every error body is a google.rpc.Status: `code` an int whose HTTP status under the standard
  mapping is the response's, `message` a string, `details` a list of objects with `@type`;
- the built-in checks: declared status codes, content types, response schemas and headers,
  405 with `Allow` for undeclared methods, and requests that break the schema rejected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.checks import AllowHeaderMismatch
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    ignored_auth,
    missing_required_header,
    positive_data_acceptance,
)

from citadel.adapters.errors import HTTP_STATUS
from citadel.server.descriptors import SERVICES
from tests.fuzz import seed
from tests.fuzz.budget import RANDOM, examples

OPENAPI = Path(__file__).resolve().parents[2] / "generated" / "citadel" / "openapi.json"
# The committed document is the one the gateway serves at /openapi.json (tests/adapters/test_docs.py
# holds them equal); loading it from disk lets pytest list one test per operation at collection.
schema = schemathesis.openapi.from_path(OPENAPI)

TIMEOUT_HEADERS = ("x-request-timeout", "grpc-timeout")
HTTP_STATUS_BY_CODE = {code.value[0]: status for code, status in HTTP_STATUS.items()}
# Statuses the HTTP layer itself answers with, more precise than the table (405, 413).
HTTP_LAYER = {405: grpc.StatusCode.UNIMPLEMENTED.value[0], 413: grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]}


class StatusBodyError(AssertionError):
    pass


def _sent_headers(response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.request.headers.items()}


def no_server_error(ctx, response, case) -> None:
    """5xx only as 504 for a request whose own timeout header set a deadline it could not meet."""
    if response.status_code < 500:
        return
    if response.status_code == 504 and any(h in _sent_headers(response) for h in TIMEOUT_HEADERS):
        return
    raise AssertionError(f"server error {response.status_code}: {response.text[:2000]}")


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


@schema.hook
def flatmap_headers(context, headers):
    """Timeout headers are fuzzed too, but a generated one (5e-324 s, -1) ends most calls before
    they reach the servicer; half the time they are left out so the body gets exercised."""
    if not headers or not any(h.lower() in TIMEOUT_HEADERS for h in headers):
        return st.just(headers)
    kept = {k: v for k, v in headers.items() if k.lower() not in TIMEOUT_HEADERS}
    return st.sampled_from([headers, kept])


def _oneof_groups() -> list[tuple[str, ...]]:
    """Each oneof of every request message, as its members' JSON names."""
    groups, seen, todo = set(), set(), [m.input_type for svc in SERVICES for m in svc.methods]
    while todo:
        message = todo.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        groups |= {tuple(f.json_name for f in o.fields) for o in message.oneofs}
        todo += [f.message_type for f in message.fields if f.message_type is not None]
    return sorted(groups)


ONEOFS = _oneof_groups()


def _one_per_oneof(value):
    """The document can only say "at most one of" in words, so schema-valid bodies often set
    several members of a oneof (a 400 every time); this keeps the first one of each."""
    if isinstance(value, list):
        return [_one_per_oneof(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _one_per_oneof(v) for k, v in value.items()}
    for group in ONEOFS:
        for extra in [k for k in group if k in out][1:]:
            del out[extra]
    return out


@schema.hook
def flatmap_body(context, body):
    return st.sampled_from([body, _one_per_oneof(body)])


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
    case.call_and_validate(
        base_url=fuzz_gateway.http_url,
        timeout=30,
        # Replaced by the checks above; schema-valid requests are not expected to succeed (they
        # name collections and jobs that mostly do not exist); and this gateway runs without
        # authentication, so the bearer scheme the document declares is not enforced here
        # (tests/interceptors/test_auth_matrix.py covers it on every RPC and protocol).
        excluded_checks=[
            not_a_server_error,
            allow_header_conformance,
            positive_data_acceptance,
            ignored_auth,
            missing_required_header,
        ],
        additional_checks=[no_server_error, status_body, allow_header],
    )
