"""GraphQL over HTTP at /graphql, and GraphiQL for browsers.

    POST /graphql  {"query", "variables", "operationName"}  (or Content-Type application/graphql)
    GET  /graphql?query=...&variables=...                  queries only (mutations need POST)
    GET  /graphql  with Accept: text/html                  GraphiQL, served from local assets

Execution results answer 200 with `data` and `errors` (each RPC error carries
`extensions.code`, the gRPC status name, and `extensions.status`, its HTTP status); a request
that cannot run at all (bad JSON, syntax or validation errors, too deep, variables of the wrong
type) answers 400. Parsed and validated documents are cached by text, so repeated queries skip
both steps.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
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
from graphql.execution.values import get_variable_values
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
from citadel.adapters.errors import HTTP_STATUS
from citadel.adapters.graphql_schema import GraphqlContext
from citadel.server.chain import Chain
from citadel.server.errors import ApiError
from citadel.server.methods import MethodSpec

MAX_DEPTH = 20  # deep enough for introspection and nested filters, short of abuse
MAX_ROOT_FIELDS = 32  # RPCs one document may run (aliases make a document fan out)
MAX_ERRORS = 50  # variable errors reported before giving up
CACHE_SIZE = 512


class GraphqlResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class Prepared:
    document: DocumentNode
    operation: OperationType


class GraphqlApp:
    def __init__(
        self, schema: graphene.Schema, specs: Sequence[MethodSpec], chain: Chain, graphiql_html: str
    ):
        self.schema = schema
        self.handlers = {spec.path: chain.handler_for(spec) for spec in specs if not spec.client_streaming}
        self._graphiql = graphiql_html
        self._cache: OrderedDict[tuple[str, str | None], Prepared | list[GraphQLError]] = OrderedDict()

    # -- preparing documents ------------------------------------------------------------------

    def prepare(self, query: str, operation_name: str | None) -> Prepared | list[GraphQLError]:
        key = (query, operation_name)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        result = self._prepare(query, operation_name)
        self._cache[key] = result
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def _prepare(self, query: str, operation_name: str | None) -> Prepared | list[GraphQLError]:
        try:
            document = parse(query)
        except GraphQLError as e:
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
        return Prepared(document, operation.operation)

    def context(self, headers: Mapping[str, str], request_id: str) -> GraphqlContext:
        def new_call(spec: MethodSpec):
            call = metadata.http_call(spec, "graphql", dict(headers))
            call.request_id = request_id
            return call

        return GraphqlContext(self.handlers, new_call)

    def variable_errors(
        self, prepared: Prepared, variables: Any, operation_name: str | None
    ) -> list[GraphQLError]:
        """Variables that do not fit their declared types. The request cannot run at all, like
        one that fails validation (graphql-core would answer it as a 200 result, without codes)."""
        operation = get_operation_ast(prepared.document, operation_name)
        if operation is None or not operation.variable_definitions:
            return []
        coerced = get_variable_values(
            self.schema.graphql_schema, operation.variable_definitions, variables or {}, max_errors=MAX_ERRORS
        )
        return coerced if isinstance(coerced, list) else []

    async def run(
        self, prepared: Prepared, variables: Any, operation_name: str | None, context: GraphqlContext
    ) -> ExecutionResult:
        result = execute(
            self.schema.graphql_schema,
            prepared.document,
            variable_values=variables,
            operation_name=operation_name,
            context_value=context,
        )
        if hasattr(result, "__await__"):
            result = await result
        return result

    # -- HTTP --------------------------------------------------------------------------------

    async def http(self, request: Request) -> Response:
        headers = metadata.header_map(request.scope["headers"])
        request_id = metadata.request_id_of(headers) or uuid.uuid4().hex
        response_headers = {"x-request-id": request_id}
        if (
            request.method == "GET"
            and "text/html" in headers.get("accept", "")
            and "query" not in request.query_params
        ):
            return HTMLResponse(self._graphiql)
        try:
            query, variables, operation_name = await _read(request)
        except ApiError as e:
            return _errors([GraphQLError(e.message)], 400, response_headers)
        prepared = self.prepare(query, operation_name)
        if isinstance(prepared, list):
            return _errors(prepared, 400, response_headers)
        if request.method == "GET" and prepared.operation != OperationType.QUERY:
            response_headers["allow"] = "POST"
            return _errors(
                [GraphQLError(f"a {prepared.operation.value} needs POST; GET runs queries only")],
                405,
                response_headers,
            )
        if prepared.operation == OperationType.SUBSCRIPTION:
            return _errors(
                [GraphQLError("subscriptions run over WebSocket (graphql-transport-ws) at this path")],
                400,
                response_headers,
            )
        errors = self.variable_errors(prepared, variables, operation_name)
        if errors:
            return _errors(errors, 400, response_headers)
        context = self.context(headers, request_id)
        result = await self.run(prepared, variables, operation_name, context)
        for call in context.calls:
            response_headers.update(call.response_metadata)
        return GraphqlResponse(result.formatted, headers=response_headers)


async def _read(request: Request) -> tuple[str, Any, str | None]:
    """query, variables, operationName from a GET query string or a POST body."""
    if request.method == "GET":
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
        body = await request.body()
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


def _bad(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _errors(errors: list[GraphQLError], status: int, headers: dict[str, str]) -> Response:
    code = "INVALID_ARGUMENT" if status == 400 else "UNIMPLEMENTED"
    http = HTTP_STATUS[grpc.StatusCode[code]] if status == 400 else status
    formatted = []
    for e in errors:
        item = e.formatted
        item["extensions"] = {"code": code, "status": http, **(item.get("extensions") or {})}
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
