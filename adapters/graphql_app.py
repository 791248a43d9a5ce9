"""GraphQL over HTTP at /graphql, and GraphiQL for browsers.

    POST /graphql  {"query", "variables", "operationName"}  (or Content-Type application/graphql)
    GET  /graphql?query=...&variables=...                  queries only (mutations need POST)
    GET  /graphql  with Accept: text/html                  GraphiQL, served from local assets

Execution results answer 200 with `data` and `errors` (each RPC error carries
`extensions.code`, the gRPC status name, and `extensions.status`, its HTTP status); a request
that cannot run at all (bad JSON, syntax or validation errors, too deep, variables of the wrong
type) answers 400.

Cost follows identity: the caller is authenticated from the headers (401 otherwise) before
the body is read, and the body (or a GET's query string) is read only up to
limits.graphql_body_bytes (413 beyond, without reading on when Content-Length says so). Only
then is JSON decoded and the document parsed, at most MAX_TOKENS tokens, in a thread when it
is large so that the event loop keeps serving. GraphiQL's page is static and needs no
credentials; every document, introspection included, does when authentication is on. Valid
documents are cached by text within limits.graphql_document_cache_bytes (graphql_documents.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import graphene
import grpc
import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from graphql.language import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from citadel.adapters import metadata
from citadel.adapters.compression import RequestDecoder
from citadel.adapters.errors import HTTP_STATUS, HttpError, http_status
from citadel.adapters.graphql_documents import DocumentCache
from citadel.adapters.graphql_schema import GraphqlContext
from citadel.adapters.graphql_variables import PrecoercedExecution, VariableCoercion
from citadel.server.auth.principal import Principal
from citadel.server.chain import Chain, new_request_id
from citadel.server.config import Settings
from citadel.server.errors import ApiError
from citadel.server.methods import MethodSpec

MAX_DEPTH = 20  # deep enough for introspection and nested filters, short of abuse
MAX_ROOT_FIELDS = 32  # RPCs one document may run (aliases make a document fan out)
MAX_ERRORS = 50  # variable errors reported before giving up
# Parsing costs ~11 µs a token: 20 000 is ~0.2 s of CPU, room for a few inline vectors (larger
# values belong in variables, which are JSON).
MAX_TOKENS = 20_000
# Larger documents are parsed off the event loop, one at a time on one thread: at most one
# core busy parsing, and one allocator arena holding what large documents leave behind.
PARSE_IN_THREAD_CHARS = 8192


@dataclass(frozen=True)
class GraphqlLimits:
    body_bytes: int  # an HTTP body, a GET query string, one WebSocket message
    document_cache_bytes: int
    subscriptions_per_connection: int
    subscriptions_per_key: int

    @classmethod
    def from_settings(cls, settings: Settings) -> GraphqlLimits:
        return cls(
            settings.graphql_body_bytes,
            settings.graphql_document_cache_bytes,
            settings.ws_subscriptions_per_connection,
            settings.ws_subscriptions_per_key,
        )


def too_large(what: str, limit: int) -> HttpError:
    return HttpError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"{what} is larger than limits.graphql_body_bytes ({limit} bytes)",
        413,
    )


class GraphqlResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class Prepared:
    document: DocumentNode
    operation: OperationType
    variables: VariableCoercion  # compiled with the document, cached with it


class GraphqlApp:
    def __init__(
        self,
        schema: graphene.Schema,
        specs: Sequence[MethodSpec],
        chain: Chain,
        graphiql_html: str,
        limits: GraphqlLimits,
    ):
        self.schema = schema
        self.chain = chain
        self.limits = limits
        self.handlers = {spec.path: chain.handler_for(spec) for spec in specs if not spec.client_streaming}
        self._graphiql = graphiql_html
        self.documents: DocumentCache[Prepared] = DocumentCache(limits.document_cache_bytes)
        self._parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphql-parse")

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller, from the request's headers alone; raises ApiError UNAUTHENTICATED."""
        return self.chain.authenticate(metadata.metadata_of(dict(headers)))

    # -- preparing documents ------------------------------------------------------------------

    async def prepare(self, query: str, operation_name: str | None) -> Prepared | list[GraphQLError]:
        key = (query, operation_name)
        found = self.documents.get(key)
        if found is not None:
            return found
        if len(query) > PARSE_IN_THREAD_CHARS:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._parser, self._prepare, query, operation_name)
        else:
            result = self._prepare(query, operation_name)
        if isinstance(result, Prepared):  # an invalid document is never kept
            self.documents.put(key, result)
        return result

    def _prepare(self, query: str, operation_name: str | None) -> Prepared | list[GraphQLError]:
        try:
            document = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError as e:
            if "tokens. Parsing aborted" in e.message:
                e = GraphQLError(
                    f"query has more than {MAX_TOKENS} tokens, the limit: pass large values "
                    "(vectors, item lists) as variables"
                )
            return [e]
        errors = validate(self.schema.graphql_schema, document)
        if errors:
            return errors
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            problem = (
                f"no operation named {operation_name!r}" if operation_name else "operationName is required"
            )
            return [GraphQLError(f"{problem} when the document holds several operations")]
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        depth = _depth(operation.selection_set, fragments, set())
        if depth > MAX_DEPTH:
            return [GraphQLError(f"query is {depth} levels deep; the limit is {MAX_DEPTH}")]
        roots = len(operation.selection_set.selections)
        if roots > MAX_ROOT_FIELDS:
            return [GraphQLError(f"query selects {roots} root fields; the limit is {MAX_ROOT_FIELDS}")]
        return Prepared(
            document, operation.operation, VariableCoercion.compile(self.schema.graphql_schema, operation)
        )

    def context(self, headers: Mapping[str, str], request_id: str, principal: Principal) -> GraphqlContext:
        def new_call(spec: MethodSpec):
            call = metadata.http_call(spec, "graphql", dict(headers))
            call.request_id = request_id
            call.state["principal"] = principal  # authenticated once: auth checks only the role
            return call

        return GraphqlContext(self.handlers, new_call)

    def coerce_variables(self, prepared: Prepared, variables: Any) -> dict[str, Any] | list[GraphQLError]:
        """The variables coerced to their declared types, once, for `run`; or the errors of
        those that do not fit. Such a request cannot run at all, like one that fails
        validation (graphql-core would answer it as a 200 result, without codes)."""
        return prepared.variables.coerce(variables or {}, MAX_ERRORS)

    async def run(
        self, prepared: Prepared, coerced: dict[str, Any], operation_name: str | None, context: GraphqlContext
    ) -> ExecutionResult:
        """Executes a query or mutation on variables `coerce_variables` returned."""
        result = execute(
            self.schema.graphql_schema,
            prepared.document,
            variable_values=coerced,
            operation_name=operation_name,
            context_value=context,
            execution_context_class=PrecoercedExecution,
        )
        if hasattr(result, "__await__"):
            result = await result
        return result

    # -- HTTP --------------------------------------------------------------------------------

    async def http(self, request: Request) -> Response:
        headers = metadata.header_map(request.scope["headers"])
        request_id = metadata.request_id_of(headers) or new_request_id()
        response_headers = {"x-request-id": request_id}
        if (
            request.method == "GET"
            and "text/html" in headers.get("accept", "")
            and "query" not in request.query_params
        ):
            return HTMLResponse(self._graphiql)
        try:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.limits.body_bytes:
                raise too_large("request body", self.limits.body_bytes)  # nothing read
            principal = self.authenticate(headers)
            query, variables, operation_name = await _read(request, self.limits.body_bytes)
        except ApiError as e:
            return _errors([GraphQLError(e.message)], response_headers, e.code, http_status(e))
        prepared = await self.prepare(query, operation_name)
        if isinstance(prepared, list):
            return _errors(prepared, response_headers)
        if request.method == "GET" and prepared.operation != OperationType.QUERY:
            response_headers["allow"] = "POST"
            return _errors(
                [GraphQLError(f"a {prepared.operation.value} needs POST; GET runs queries only")],
                response_headers,
                grpc.StatusCode.UNIMPLEMENTED,
                405,
            )
        if prepared.operation == OperationType.SUBSCRIPTION:
            return _errors(
                [GraphQLError("subscriptions run over WebSocket (graphql-transport-ws) at this path")],
                response_headers,
            )
        coerced = self.coerce_variables(prepared, variables)
        if isinstance(coerced, list):
            return _errors(coerced, response_headers)
        context = self.context(headers, request_id, principal)
        result = await self.run(prepared, coerced, operation_name, context)
        for call in context.calls:
            response_headers.update(call.response_metadata)
        return GraphqlResponse(result.formatted, headers=response_headers)


async def _read(request: Request, limit: int) -> tuple[str, Any, str | None]:
    """query, variables, operationName from a GET query string or a POST body, either read
    only up to `limit` bytes."""
    if request.method == "GET":
        if len(request.scope.get("query_string", b"")) > limit:
            raise too_large("query string", limit)
        params = request.query_params
        query, variables, operation_name = (
            params.get("query"),
            params.get("variables"),
            params.get("operationName"),
        )
        if variables:
            try:
                variables = orjson.loads(variables)
            except orjson.JSONDecodeError as e:
                raise _bad(f"variables is not valid JSON: {e}") from None
    else:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await _body(request, limit)
        if content_type == "application/graphql":
            query, variables, operation_name = body.decode("utf-8", "replace"), None, None
        else:
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as e:
                raise _bad(f"request body is not valid JSON: {e}") from None
            if not isinstance(payload, dict):
                raise _bad("request body must be a JSON object with a 'query'")
            query, variables, operation_name = (
                payload.get("query"),
                payload.get("variables"),
                payload.get("operationName"),
            )
    if not isinstance(query, str) or not query.strip():
        raise _bad("'query' is required and must be a string")
    if variables is not None and not isinstance(variables, dict):
        raise _bad("'variables' must be a JSON object")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _bad("'operationName' must be a string")
    return query, variables, operation_name


async def _body(request: Request, limit: int) -> bytes:
    """The body, within `limit` bytes as sent and, for a gzip one, decompressed as well."""
    decoder = RequestDecoder.for_headers(
        metadata.header_map(request.scope["headers"]), limit, lambda: too_large("request body", limit)
    )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large("request body", limit)
        chunks.append(chunk if decoder is None else decoder.feed(chunk))
    if decoder is not None:
        decoder.finish()
    return b"".join(chunks)


def _bad(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _errors(
    errors: list[GraphQLError],
    headers: dict[str, str],
    code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
    status: int | None = None,
) -> Response:
    """A request that did not run: its errors with the gRPC code's name and the HTTP status."""
    status = status or HTTP_STATUS[code]
    formatted = []
    for e in errors:
        item = e.formatted
        item["extensions"] = {"code": code.name, "status": status, **(item.get("extensions") or {})}
        formatted.append(item)
    return GraphqlResponse({"errors": formatted}, status_code=status, headers=headers)


def _depth(selection_set: SelectionSetNode | None, fragments: dict[str, Any], visiting: set[str]) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments, visiting))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, visiting))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in visiting:
                deepest = max(deepest, _depth(fragments[name].selection_set, fragments, visiting | {name}))
    return deepest
