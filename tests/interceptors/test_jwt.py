"""JWT verification with real keys: HS256, RS256 from a PEM file and from a JWKS file, and every
claim check (exp, nbf, aud, iss, role)."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from citadel.options.v1 import options_pb2
from citadel.server.auth.jwt_tokens import JwtVerifier, TokenError


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(**extra) -> dict:
    # Made when the tests are collected, so valid for an hour: long suites must not see them expire.
    return {"sub": "u1", "role": "writer", "exp": time.time() + 3600, "aud": "citadel", "iss": "idp", **extra}


def test_hs256_gives_role_and_tenant():
    verifier = JwtVerifier(hs256_secret="s" * 32, audience="citadel", issuer="idp")
    principal = verifier.verify(jwt.encode(claims(tenant="acme"), "s" * 32, algorithm="HS256"))
    assert (principal.role, principal.tenant, principal.subject) == (
        options_pb2.ROLE_WRITER,
        "acme",
        "jwt:u1",
    )


def test_rs256_from_pem(rsa_key):
    verifier = JwtVerifier(public_key_pem=pem_of(rsa_key), audience="citadel", issuer="idp")
    assert verifier.verify(jwt.encode(claims(), rsa_key, algorithm="RS256")).role == options_pb2.ROLE_WRITER


def test_rs256_from_jwks_picks_the_key_by_kid(rsa_key, tmp_path):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = []
    for kid, key in (("old", other), ("current", rsa_key)):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
    verifier = JwtVerifier(jwks={"keys": keys}, audience="citadel", issuer="idp")
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "current"})
    assert verifier.verify(token).subject == "jwt:u1"
    forged = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "current"})
    with pytest.raises(TokenError, match="signature"):
        verifier.verify(forged)
    unknown = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "nope"})
    with pytest.raises(TokenError, match="kid"):
        verifier.verify(unknown)


# Claims are made when the test runs, not when it is collected: a suite runs for many minutes,
# and an `nbf` ten minutes ahead at collection had passed by the time this ran.
@pytest.mark.parametrize(
    "token_claims, fragment",
    [
        (lambda: claims(exp=time.time() - 60), "expired"),
        (lambda: claims(nbf=time.time() + 600), "not valid yet"),
        (lambda: claims(aud="someone-else"), "audience"),
        (lambda: claims(iss="elsewhere"), "issuer"),
        (lambda: {k: v for k, v in claims().items() if k != "exp"}, "'exp'"),
        (lambda: claims(role="superuser"), "role"),
    ],
    ids=["exp", "nbf", "aud", "iss", "no-exp", "role"],
)
def test_claims_are_checked(token_claims, fragment):
    verifier = JwtVerifier(hs256_secret="s" * 32, audience="citadel", issuer="idp")
    with pytest.raises(TokenError, match=fragment):
        verifier.verify(jwt.encode(token_claims(), "s" * 32, algorithm="HS256"))


def test_algorithm_confusion_is_refused(rsa_key):
    """An HS256 token signed with the RS256 public key must not pass as RS256-verified."""
    verifier = JwtVerifier(public_key_pem=pem_of(rsa_key), audience="citadel", issuer="idp")
    with pytest.raises(TokenError):
        verifier.verify(jwt.encode(claims(), "not-the-key" * 4, algorithm="HS256"))
    with pytest.raises(TokenError, match="not a JWT|neither"):
        verifier.verify("garbage")
