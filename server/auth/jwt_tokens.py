"""JWT bearer tokens: HS256 with a shared secret, RS256 with a public key or a JWKS file.

`exp` is required; `nbf`, `aud` and `iss` are checked (aud/iss when configured). The token's
`role` claim gives the role and its optional `tenant` claim the tenant.
"""

from __future__ import annotations

import json
from pathlib import Path

import jwt

from citadel.server.auth.principal import Principal, parse_role, parse_tenant

LEEWAY_SECONDS = 5


class TokenError(Exception):
    """The token is not acceptable; the message says why, never echoing the token."""


class JwtVerifier:
    def __init__(
        self,
        hs256_secret: str = "",
        public_key_pem: str = "",
        jwks: dict | None = None,
        audience: str = "",
        issuer: str = "",
    ) -> None:
        self._hs256 = hs256_secret
        self._rs256_key = public_key_pem
        self._jwks = jwt.PyJWKSet.from_dict(jwks) if jwks else None
        self._audience = audience or None
        self._issuer = issuer or None

    @classmethod
    def from_settings(cls, settings) -> JwtVerifier | None:
        if not (settings.jwt_hs256_secret or settings.jwt_public_key_file or settings.jwks_file):
            return None
        pem = Path(settings.jwt_public_key_file).read_text() if settings.jwt_public_key_file else ""
        jwks = json.loads(Path(settings.jwks_file).read_text()) if settings.jwks_file else None
        return cls(settings.jwt_hs256_secret, pem, jwks, settings.jwt_audience, settings.jwt_issuer)

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenError("bearer token is neither an API key nor a JWT") from None
        alg = header.get("alg")
        key = self._key_for(alg, header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token audience does not match") from None
        except jwt.InvalidIssuerError:
            raise TokenError("token issuer does not match") from None
        except jwt.MissingRequiredClaimError as e:
            raise TokenError(f"token lacks the {e.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise TokenError("token signature or format is invalid") from None
        # The same rules as API keys' (principal.py): a tenant that could not be configured on a
        # key is refused here too, so no token reaches another tenant's physical names.
        try:
            role = parse_role("token claim 'role'", claims.get("role"))
            tenant = parse_tenant("token claim 'tenant'", claims.get("tenant", ""))
        except ValueError as e:
            raise TokenError(str(e)) from None
        return Principal(subject=f"jwt:{claims.get('sub', '')}", role=role, tenant=tenant)

    def _key_for(self, alg: str | None, kid: str | None):
        if alg == "HS256" and self._hs256:
            return self._hs256
        if alg == "RS256":
            if self._jwks is not None:
                for k in self._jwks.keys:
                    if kid is None or k.key_id == kid:
                        return k.key
                raise TokenError("token key id (kid) is not in the configured JWKS")
            if self._rs256_key:
                return self._rs256_key
        raise TokenError(f"token algorithm {alg!r} is not accepted")
