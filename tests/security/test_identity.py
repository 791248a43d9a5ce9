"""Identity and tenancy against a real gateway with auth on and two tenants (acme, globex), each
request over gRPC, REST and GraphQL:

- a JWT's `tenant` and `role` claims follow the API keys' rules, else UNAUTHENTICATED naming
  the claim (a tenant `acme.x` would otherwise plant collections that tenant `acme` lists);
- a tenant's admin flushes and reads only its own tenant's cache;
- error messages name collections as the caller does, never `acme.films`;
- rate-limit buckets that no caller could match stop start-up.
"""

from __future__ import annotations

import time
import uuid

import grpc
import jwt
import pytest

from citadel.admin.v1 import admin_service_pb2 as admin
from citadel.server.config import ConfigError, Settings
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.security.protocol_calls import PROTOCOLS, call
from tests.support.auth_config import AUDIENCE, ISSUER, JWT_SECRET, token, write_config
from tests.support.gateway_process import GatewayProcess

SEARCH = "citadel.vector.v1.VectorService/SearchVectors"

BAD_CLAIMS = {
    "tenant with the name separator": ({"role": "writer", "tenant": "acme.x"}, "tenant"),
    "tenant of 300 characters": ({"role": "writer", "tenant": "a" * 300}, "tenant"),
    "tenant with NUL": ({"role": "writer", "tenant": "ac\x00me"}, "tenant"),
    "tenant null": ({"role": "writer", "tenant": None}, "tenant"),
    "tenant a number": ({"role": "writer", "tenant": 7}, "tenant"),
    "tenant upper case": ({"role": "writer", "tenant": "Acme"}, "tenant"),
    "tenant with a colon": ({"role": "writer", "tenant": "acme:x"}, "tenant"),
    "role unknown": ({"role": "superuser", "tenant": "acme"}, "role"),
    "role null": ({"role": None, "tenant": "acme"}, "role"),
    "role a list": ({"role": ["admin"], "tenant": "acme"}, "role"),
    "role of 300 characters": ({"role": "r" * 300, "tenant": "acme"}, "role"),
}


def jwt_with(claims: dict) -> str:
    """A correctly signed, unexpired token carrying exactly `claims` (null and numbers too)."""
    body = {"sub": "mallory", "exp": time.time() + 300, "aud": AUDIENCE, "iss": ISSUER, **claims}
    return jwt.encode(body, JWT_SECRET, algorithm="HS256")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case", sorted(BAD_CLAIMS))
def test_jwt_claims_follow_the_key_rules(secured, case, protocol):
    claims, claim = BAD_CLAIMS[case]
    bearer = jwt_with(claims)
    outcome = call(secured, protocol, "ListCollections", pb.ListCollectionsRequest(), bearer)
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED, outcome
    assert f"token claim '{claim}'" in outcome.message
    assert len(outcome.message) < 300 and "\x00" not in outcome.message and "a" * 100 not in outcome.message
    created = call(
        secured,
        protocol,
        "CreateCollection",
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(name="planted", dimension=3, distance=1)
        ),
        bearer,
    )
    assert created.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_valid_jwt_tenant_sees_its_tenant(secured, protocol):
    name = f"jwt-{uuid.uuid4().hex[:8]}"
    create = pb.CreateCollectionRequest(
        collection=resources_pb2.Collection(name=name, dimension=3, distance=1)
    )
    assert call(secured, "grpc", "CreateCollection", create, secured.creds.keys["admin"]).code.name == "OK"
    listed = call(
        secured,
        protocol,
        "ListCollections",
        pb.ListCollectionsRequest(page_size=1000),
        token("reader", "acme"),
    )
    assert listed.code == grpc.StatusCode.OK, listed
    assert name in {c.name for c in listed.response.collections}
    other = call(
        secured,
        protocol,
        "ListCollections",
        pb.ListCollectionsRequest(page_size=1000),
        token("reader", "globex"),
    )
    assert name not in {c.name for c in other.response.collections}


# -- errors name the caller's collection -----------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_name_the_callers_collection(secured, protocol):
    caller = secured.creds.keys["admin"]  # an admin: the cases include creating and deleting
    name = f"films-{uuid.uuid4().hex[:8]}"
    create = pb.CreateCollectionRequest(
        collection=resources_pb2.Collection(name=name, dimension=3, distance=1)
    )
    assert call(secured, "grpc", "CreateCollection", create, caller).code == grpc.StatusCode.OK
    cases = [
        ("GetCollection", pb.GetCollectionRequest(name=f"{name}-missing"), grpc.StatusCode.NOT_FOUND),
        ("CreateCollection", create, grpc.StatusCode.ALREADY_EXISTS),
        (
            "UpsertVectors",
            pb.UpsertVectorsRequest(
                collection=name, vectors=[resources_pb2.Vector(id="v", embedding=[1.0, 0.0])]
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "SearchVectors",
            pb.SearchVectorsRequest(collection=name, query_vector=[1.0, 0.0], limit=1),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        ("DeleteCollection", pb.DeleteCollectionRequest(name=f"{name}-missing"), grpc.StatusCode.NOT_FOUND),
    ]
    for method, request, code in cases:
        outcome = call(secured, protocol, method, request, caller)
        assert outcome.code == code, (method, outcome)
        assert f"'{name}" in outcome.message, (method, outcome.message)
        assert "acme." not in outcome.message, (method, outcome.message)


# -- cache administration acts within the caller's tenant ------------------------------------


def searched(secured, key: str, name: str) -> None:
    request = pb.SearchVectorsRequest(collection=name, query_vector=[1, 0, 0], limit=1)
    assert call(secured, "grpc", "SearchVectors", request, secured.creds.keys[key]).code == grpc.StatusCode.OK


def collection_of(secured, key: str) -> str:
    name = f"cached-{uuid.uuid4().hex[:8]}"
    bearer = secured.creds.keys[key]
    create = pb.CreateCollectionRequest(
        collection=resources_pb2.Collection(name=name, dimension=3, distance=1)
    )
    assert call(secured, "grpc", "CreateCollection", create, bearer).code == grpc.StatusCode.OK
    upsert = pb.UpsertVectorsRequest(
        collection=name, vectors=[resources_pb2.Vector(id="v", embedding=[1, 0, 0])]
    )
    assert call(secured, "grpc", "UpsertVectors", upsert, bearer).code == grpc.StatusCode.OK
    return name


def search_counts(secured, key: str, protocol: str = "grpc") -> tuple[int, int]:
    outcome = call(secured, protocol, "GetCacheStats", admin.GetCacheStatsRequest(), secured.creds.keys[key])
    assert outcome.code == grpc.StatusCode.OK, outcome
    by_method = {m.method: m for m in outcome.response.methods}
    stats = by_method.get(SEARCH)
    return (stats.hits, stats.misses) if stats else (0, 0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_tenant_admin_flushes_only_its_own_cache(secured, protocol):
    acme, globex = collection_of(secured, "admin"), collection_of(secured, "other-tenant")
    searched(secured, "other-tenant", globex)
    searched(secured, "admin", acme)
    globex_before, acme_before = search_counts(secured, "other-tenant"), search_counts(secured, "admin")

    flushed = call(secured, protocol, "FlushCache", admin.FlushCacheRequest(), secured.creds.keys["admin"])
    assert flushed.code == grpc.StatusCode.OK, flushed
    searched(secured, "other-tenant", globex)
    searched(secured, "admin", acme)

    globex_after, acme_after = search_counts(secured, "other-tenant"), search_counts(secured, "admin")
    assert globex_after == (globex_before[0] + 1, globex_before[1])  # still cached: a hit
    assert acme_after == (acme_before[0], acme_before[1] + 1)  # flushed: a miss


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_tenant_admin_reads_only_its_own_cache_stats(secured, protocol):
    globex = collection_of(secured, "other-tenant")
    acme_before = search_counts(secured, "admin", protocol)
    root_before = search_counts(secured, "root", protocol)
    searched(secured, "other-tenant", globex)
    searched(secured, "other-tenant", globex)
    assert search_counts(secured, "admin", protocol) == acme_before  # globex's calls are not acme's
    root_after = search_counts(secured, "root", protocol)
    assert (root_after[0] - root_before[0], root_after[1] - root_before[1]) == (1, 1)  # everyone's
    tenant_view = call(
        secured, protocol, "GetCacheStats", admin.GetCacheStatsRequest(), secured.creds.keys["admin"]
    ).response
    root_view = call(
        secured, protocol, "GetCacheStats", admin.GetCacheStatsRequest(), secured.creds.keys["root"]
    ).response
    assert (tenant_view.entries, tenant_view.bytes) == (0, 0)  # the backend's size is not acme's
    assert root_view.entries > 0 and root_view.bytes > 0


# -- rate-limit buckets no caller could match ------------------------------------------------


def test_an_unmatchable_bucket_stops_start_up(tmp_path):
    creds = write_config(tmp_path / "citadel.toml", '[rate_limits.buckets]\n"tenant:Globex" = {rate = 1}\n')
    gateway = GatewayProcess(tmp_path / "data", args=["--config", str(creds.config_path)])
    with pytest.raises(RuntimeError) as e:
        gateway.start()
    assert "rate_limits.buckets.tenant:Globex" in str(e.value)


@pytest.mark.parametrize(
    ("bucket", "message"),
    [
        ("tenant:Globex", "rate_limits.buckets.tenant:Globex: 'Globex' is not a valid tenant id"),
        ("tenant:acme.x", "rate_limits.buckets.tenant:acme.x: 'acme.x' is not a valid tenant id"),
        ("key:nobody", "rate_limits.buckets.key:nobody: 'nobody' is not a configured auth.api_keys id"),
        ("role:root", "rate_limits.buckets.role:root: role 'root' is not reader"),
        ("ip:127.0.0.1", "rate_limits.buckets.ip:127.0.0.1: name buckets 'role:<role>'"),
    ],
)
def test_bucket_mistakes_name_the_bucket(tmp_path, bucket, message):
    creds = write_config(tmp_path / "citadel.toml", f'[rate_limits.buckets]\n"{bucket}" = {{rate = 1}}\n')
    with pytest.raises(ConfigError) as e:
        Settings.load(creds.config_path, env={})
    assert message in str(e.value)


def test_matchable_buckets_load(tmp_path):
    buckets = '"tenant:globex" = {rate = 1}\n"key:reader" = {rate = 1}\n"role:writer" = {rate = 1}\n'
    creds = write_config(tmp_path / "citadel.toml", "[rate_limits.buckets]\n" + buckets)
    assert set(Settings.load(creds.config_path, env={}).rate_limits) == {
        "tenant:globex",
        "key:reader",
        "role:writer",
    }
