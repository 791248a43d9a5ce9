"""Variable coercion for prepared GraphQL documents: compiled once per document, run once
per request.

graphql-core coerces variable values node by node through generic code (a 384-float
`[Float!]` query vector costs about a millisecond), and the adapter used to pay it twice per
request: once to answer bad variables with 400, once more inside `execute`. Here each
operation's variable definitions are compiled, when its document is prepared (and cached
with it), into plain functions for scalars, enums and lists of them; the values are coerced
once and execution runs on them (`PrecoercedExecution`).

A compiled coercer never decides that a value is wrong: whenever it meets a value it cannot
take as valid as it stands (a wrong type, a null, a non-finite number, an input object), it
gives up and graphql-core's own coercion runs over all the variables. So errors, their
wording and order, the max_errors bound and the nesting bound are graphql-core's exactly;
the fast path only ever returns what graphql-core would have returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from math import isfinite
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLFloat,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    OperationDefinitionNode,
    Undefined,
    VariableDefinitionNode,
    get_operation_ast,
    is_input_type,
    is_leaf_type,
    type_from_ast,
    value_from_ast,
)
from graphql.execution import ExecutionContext
from graphql.execution.execute import CollectedErrors, default_field_resolver, default_type_resolver
from graphql.execution.values import get_variable_values

Coercer = Callable[[Any], Any]


class GiveUp(Exception):
    """A compiled coercer met a value it does not take as valid as it stands; graphql-core's
    coercion decides instead (and words the error, if there is one)."""


@dataclass(frozen=True)
class CompiledVariable:
    name: str
    type: GraphQLInputType
    non_null: bool
    default: Any  # the definition's default value node, or None
    coerce: Coercer


@dataclass(frozen=True)
class VariableCoercion:
    """How one operation's variables are coerced: compiled coercers when every definition has
    one, else None and graphql-core's coercion always."""

    schema: GraphQLSchema
    definitions: Sequence[VariableDefinitionNode]
    compiled: tuple[CompiledVariable, ...] | None

    @classmethod
    def compile(cls, schema: GraphQLSchema, operation: OperationDefinitionNode) -> VariableCoercion:
        definitions = tuple(operation.variable_definitions or ())
        compiled: list[CompiledVariable] = []
        for definition in definitions:
            type_ = type_from_ast(schema, definition.type)
            coerce = _compile(type_) if type_ is not None and is_input_type(type_) else None
            if coerce is None:
                return cls(schema, definitions, None)
            compiled.append(
                CompiledVariable(
                    definition.variable.name.value,
                    type_,
                    isinstance(type_, GraphQLNonNull),
                    definition.default_value,
                    coerce,
                )
            )
        return cls(schema, definitions, tuple(compiled))

    def coerce(self, inputs: dict[str, Any], max_errors: int) -> dict[str, Any] | list[GraphQLError]:
        """The coerced values, or graphql-core's errors for them."""
        if self.compiled is not None:
            with suppress(GiveUp):  # a value the coercers do not take as it stands
                return self._compiled(inputs)
        return get_variable_values(self.schema, self.definitions, inputs, max_errors=max_errors)

    def _compiled(self, inputs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for variable in self.compiled or ():
            if variable.name not in inputs:
                if variable.default:
                    out[variable.name] = value_from_ast(variable.default, variable.type)
                elif variable.non_null:
                    raise GiveUp  # graphql-core says which variable is missing
                continue
            out[variable.name] = variable.coerce(inputs[variable.name])
        return out


def _compile(type_: GraphQLInputType, in_list: bool = False) -> Coercer | None:
    """A coercer for leaves (scalars, enums), non-null leaves and lists of them; None for
    anything else (input objects, lists of lists), which graphql-core coerces."""
    if isinstance(type_, GraphQLNonNull):
        inner = _compile(type_.of_type, in_list)
        if inner is None:
            return None

        def non_null(value: Any) -> Any:
            if value is None:
                raise GiveUp
            return inner(value)

        return non_null
    if isinstance(type_, GraphQLList):
        if in_list:
            return None
        item_type = type_.of_type
        if isinstance(item_type, GraphQLNonNull) and item_type.of_type is GraphQLFloat:
            return _float_list
        item = _compile(item_type, in_list=True)
        if item is None:
            return None

        def list_of(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not list:
                raise GiveUp  # graphql-core wraps a single value, or reports it
            return [item(v) for v in value]

        return list_of
    if is_leaf_type(type_):
        parse_value = type_.parse_value

        def leaf(value: Any) -> Any:
            if value is None:
                return None
            try:
                parsed = parse_value(value)
            except Exception:
                raise GiveUp from None
            if parsed is Undefined:
                raise GiveUp
            return parsed

        return leaf
    return None


def _float_list(value: Any) -> list[float] | None:
    """`[Float!]`, the shape of every vector: a list of JSON numbers, checked in bulk. Floats
    must be finite (graphql-core's coerce_float); ints become floats, as it makes them."""
    if value is None:
        return None
    if type(value) is not list:
        raise GiveUp
    kinds = set(map(type, value))
    if kinds <= {float}:
        coerced = list(value)
    elif kinds <= {float, int}:
        try:
            coerced = [float(v) for v in value]
        except OverflowError:
            raise GiveUp from None
    else:
        raise GiveUp  # bools, strings, nulls: graphql-core words the error
    # One sum finds any inf or nan (and gives up, rarely, on finite values that overflow it).
    if not isfinite(sum(coerced)):
        raise GiveUp
    return coerced


class PrecoercedExecution(ExecutionContext):
    """Executes with variable values coerced beforehand by VariableCoercion, instead of
    coercing the raw values again. The operation is chosen by graphql-core's own rule."""

    @classmethod
    def build(  # type: ignore[override]
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        field_resolver: Any = None,
        type_resolver: Any = None,
        subscribe_field_resolver: Any = None,
        max_coercion_errors: int = 50,
        middleware: Any = None,
        is_awaitable: Any = None,
        **_options: Any,
    ) -> list[GraphQLError] | ExecutionContext:
        operation = get_operation_ast(document, operation_name)
        if operation is None or middleware is not None:
            # Not what the adapter prepares: graphql-core's own path (and its error).
            return super().build(
                schema,
                document,
                root_value,
                context_value,
                raw_variable_values,
                operation_name,
                field_resolver,
                type_resolver,
                subscribe_field_resolver,
                max_coercion_errors,
                middleware,
                is_awaitable,
                **_options,
            )
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        return cls(
            schema,
            fragments,
            root_value,
            context_value,
            operation,
            raw_variable_values or {},
            field_resolver or default_field_resolver,
            type_resolver or default_type_resolver,
            subscribe_field_resolver or default_field_resolver,
            CollectedErrors(),
            None,
            is_awaitable,
        )
