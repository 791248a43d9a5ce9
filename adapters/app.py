"""The HTTP application on port 8000: REST, OpenAPI, GraphQL, docs pages and probes.

    /v1/...            REST/JSON, every google.api.http binding (rest.py)
    /openapi.json      the OpenAPI 3.1 document; /docs renders it with Swagger UI
    /graphql           GraphQL over HTTP (GraphiQL for browsers) and over WebSocket
    /healthz, /readyz  probes
    /metrics           Prometheus metrics
    /assets/...        Swagger UI, GraphiQL and our page scripts, all served locally
    /<pkg>.<Service>/<Method>   gRPC-Web (grpc_web.py) and Connect (connect.py), by Content-Type

Everything is derived from the gateway's method specs when the app is created. REST requests
go straight to the REST router (no Starlette routing on the hot path); a path that no binding
matches falls through, once, to the Starlette app holding the fixed pages, whose 404 is Status
JSON (rest.not_found).

The app is given the parts of the gateway it serves (specs, chain, settings, lifecycle, metrics),
not the gateway itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from importlib.resources import files
from pathlib import Path

import swagger_ui_bundle
from google.protobuf import descriptor_pb2
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from citadel.adapters import graphql_ws, openapi
from citadel.adapters.compression import gzip_responses
from citadel.adapters.connect import ConnectApp, is_connect
from citadel.adapters.cors import CorsPolicy, with_cors
from citadel.adapters.descriptions import Descriptions
from citadel.adapters.graphql_app import GraphqlApp, GraphqlLimits
from citadel.adapters.graphql_schema import build_schema
from citadel.adapters.grpc_web import GrpcWebApp, is_grpc_web
from citadel.adapters.rest import RestRouter, not_found
from citadel.server.chain import Chain
from citadel.server.config import Settings
from citadel.server.descriptors import descriptor_set
from citadel.server.lifecycle import Lifecycle
from citadel.server.methods import MethodSpec

STATIC = Path(__file__).parent / "static"
TITLE = "Citadel"


def graphiql_assets() -> Path:
    """GraphiQL, React and graphql-ws builds shipped by graphene-django-graphiql-static (a
    plain wheel of static files; Django is not needed to read them)."""
    return Path(str(files("graphene_django_graphiql_static"))) / "static" / "graphene_django_graphiql_static"


def page(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8").replace("{title}", TITLE)


class RpcPaths:
    """gRPC-Web and Connect on the gRPC paths (/package.Service/Method), chosen by Content-Type;
    any other path goes to `rest`. REST paths never start with a package name, so what REST pays
    for this is one dict lookup."""

    def __init__(self, rest, grpc_web: GrpcWebApp, connect: ConnectApp) -> None:
        self.rest = rest
        self.grpc_web = grpc_web
        self.connect = connect
        self.paths = frozenset(grpc_web.specs)

    async def __call__(self, scope, receive, send) -> None:
        if scope["path"] not in self.paths:
            await self.rest(scope, receive, send)
            return
        content_type = ""
        for name, value in scope["headers"]:
            if name.lower() == b"content-type":
                content_type = value.decode("latin-1").partition(";")[0].strip().lower()
        if is_grpc_web(content_type):
            await self.grpc_web(scope, receive, send)
        elif is_connect(scope["method"], content_type):
            await self.connect(scope, receive, send)
        else:
            body = (
                f"Content-Type {content_type!r}: {scope['path']} serves gRPC-Web (application/grpc-web*) "
                "and Connect (application/proto, application/json, application/connect+proto|json); "
                "native gRPC is on the gRPC port"
            ).encode()
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 415, "headers": headers})
            await send({"type": "http.response.body", "body": body})


class HttpApp:
    """ASGI entry point: gRPC-Web and Connect on the gRPC paths, REST bindings, then the fixed
    pages; all behind the CORS policy when one is configured (adapters/cors.py), so it covers
    every route on the port."""

    def __init__(
        self, rest: RestRouter, pages: Starlette, cors: CorsPolicy | None = None, rpc: RpcPaths | None = None
    ) -> None:
        self.rest = rest
        self.pages = pages
        self._http = with_cors(rest if rpc is None else rpc, cors)
        self._other = with_cors(pages, cors)  # WebSockets (GraphQL subscriptions), lifespan

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self._other(scope, receive, send)


def create_app(
    specs: Sequence[MethodSpec],
    chain: Chain,
    settings: Settings,
    lifecycle: Lifecycle,
    render_metrics: Callable[[], Awaitable[bytes]],
    worker: int = 0,
    extra_descriptor_sets: Sequence[descriptor_pb2.FileDescriptorSet] = (),
) -> HttpApp:
    """`render_metrics` makes what /metrics serves; `worker` is this process's index under
    --workers; `extra_descriptor_sets` describe extra services (tests) for the docs."""
    specs = [s for s in specs if not s.client_streaming]  # HTTP has no client streams
    sets = (descriptor_set(), *extra_descriptor_sets)
    descriptions = Descriptions(sets)
    document = openapi.render(openapi.build(specs, descriptions)).encode()
    graphql = GraphqlApp(
        build_schema(specs, descriptions),
        specs,
        chain,
        page("graphiql.html"),
        GraphqlLimits.from_settings(settings),
    )
    graphql_sockets = graphql_ws.GraphqlSockets(graphql)
    docs_html = page("docs.html")

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        ready = lifecycle.ready
        components = {c.name: c.state for c in lifecycle.components.values()}
        body = {"ready": ready, "components": components}
        if settings.workers > 1:  # which process answered: a connection stays with one
            body["worker"] = worker
        return JSONResponse(body, status_code=200 if ready else 503)

    async def openapi_json(request: Request) -> Response:
        return Response(document, media_type="application/json")

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_html)

    async def metrics(request: Request) -> Response:
        return Response(await render_metrics(), media_type=CONTENT_TYPE_LATEST)

    async def graphql_socket(websocket: WebSocket) -> None:
        await graphql_sockets.serve(websocket)

    pages = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi_json),
            Route("/docs", docs),
            Route("/graphql", graphql.http, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_socket),
            Mount(
                "/assets",
                routes=[
                    Mount("/swagger-ui", StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path))),
                    Mount("/graphiql", StaticFiles(directory=str(graphiql_assets()))),
                    Mount("/citadel", StaticFiles(directory=str(STATIC))),
                ],
            ),
        ]
    )
    pages.router.default = not_found
    rest = RestRouter(specs, chain, settings.rest_body_bytes, settings.rest_response_bytes, fallback=pages)
    by_path = {spec.path: spec for spec in specs}
    limits = (settings.rest_body_bytes, settings.rest_response_bytes, settings.gzip_min_bytes)
    # REST, GraphQL and the pages (the router's fallback) gzip large replies; gRPC-Web and
    # Connect negotiate compression in their own terms (same threshold).
    compressed = gzip_responses(rest, settings.gzip_min_bytes)
    rpc = RpcPaths(compressed, GrpcWebApp(by_path, chain, *limits), ConnectApp(by_path, chain, *limits))
    return HttpApp(rest, pages, settings.parsed.cors, rpc)
