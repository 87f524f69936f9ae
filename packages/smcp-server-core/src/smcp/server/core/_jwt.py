"""Signed tokens (JWT) with SMCP claims: verification at connect and the claims a principal gets.

Needs the ``jwt`` extra (``pip install 'smcp-server-core[jwt]'``: PyJWT with cryptography).
The claims are a contract, documented in the server README:

- ``sub``: the principal (required);
- ``smcp_role``: ``"agent"`` or ``"computer"``, the only role the connection may join as (required);
- ``smcp_offices``: office ids it may join, or ``["*"]`` (required);
- ``smcp_name``: the only name it may join under (optional);
- ``smcp_tools``: ``fnmatch`` patterns of the tool names an agent may call (optional).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from smcp.core.roles import Role
from smcp.server.core._auth import AuthProvider, AuthRefused, Principal

__all__ = ["CLAIM_NAME", "CLAIM_OFFICES", "CLAIM_ROLE", "CLAIM_TOOLS", "JWTAuth", "issue_token"]

log = logging.getLogger("smcp.server")

CLAIM_ROLE = "smcp_role"
CLAIM_OFFICES = "smcp_offices"
CLAIM_NAME = "smcp_name"
CLAIM_TOOLS = "smcp_tools"

_HMAC = ("HS256", "HS384", "HS512")
_ROLES = frozenset(r.value for r in Role)


def _jwt() -> Any:
    try:
        import jwt
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError("JWTAuth needs PyJWT: pip install 'smcp-server-core[jwt]'") from None
    return jwt


def _bearer(auth: Any, headers: Mapping[str, str]) -> str | None:
    if isinstance(auth, dict):
        token = auth.get("token")
        if isinstance(token, str) and token:
            return token
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


class JWTAuth:
    """Verifies a JWT sent in ``auth.token`` (or an ``Authorization: Bearer`` handshake header).

    Give exactly one key source: ``secret`` (HS256), ``public_key`` (PEM text or a path; RS256 or
    ES256) or ``jwks_url`` (keys fetched, cached, and fetched again on an unknown ``kid`` at most
    every ``jwks_min_interval`` seconds, and once they are ``jwks_max_age`` seconds old, so a key the
    issuer withdrew stops working). ``exp`` is required; ``nbf``, and ``iss`` / ``aud`` when
    given here, are checked with ``leeway`` seconds of clock skew. ``fallback`` handles a
    credential that is not a JWT (e.g. a :class:`~smcp.server.core.TokenAuth` during a migration).
    """

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        public_key: str | Path | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | Sequence[str] | None = None,
        algorithms: Sequence[str] | None = None,
        leeway: float = 30.0,
        jwks_min_interval: float = 30.0,
        jwks_max_age: float = 300.0,
        jwks_timeout: float = 5.0,
        fallback: AuthProvider | None = None,
    ) -> None:
        jwt = _jwt()
        if sum(x is not None for x in (secret, public_key, jwks_url)) != 1:
            raise ValueError("JWTAuth needs exactly one of secret, public_key or jwks_url")
        self._jwt = jwt
        self._key: Any = None
        if secret is not None:
            if not secret:
                raise ValueError("JWTAuth needs a non-empty secret")
            self._key = secret.encode() if isinstance(secret, str) else secret
            default_algs: Sequence[str] = _HMAC
        elif public_key is not None:
            self._key = _load_public_key(public_key)
            default_algs = _asymmetric_algs(self._key)
        else:
            default_algs = ("RS256", "ES256", "PS256", "EdDSA")
        self._algorithms = list(algorithms or default_algs)
        self._issuer = issuer
        self._audience = audience if audience is None or isinstance(audience, str) else list(audience)
        self._leeway = leeway
        self._jwks_url = jwks_url
        self._jwks_min_interval = jwks_min_interval
        self._jwks_max_age = jwks_max_age
        self._jwks_timeout = jwks_timeout
        self._jwks: dict[str, Any] = {}
        self._jwks_fetched = float("-inf")
        self._jwks_lock = asyncio.Lock()
        self._fallback = fallback
        required = ["exp", "sub"]
        if issuer is not None:
            required.append("iss")
        if audience is not None:
            required.append("aud")
        self._options = {"require": required}

    async def authenticate(self, auth: Any, headers: Mapping[str, str]) -> Principal | None:
        token = _bearer(auth, headers)
        if token is None:
            raise AuthRefused(
                "missing_token", 'no token: send a JWT in the Socket.IO auth object {"token": ...}'
            )
        if token.count(".") != 2 and self._fallback is not None:
            return await self._fallback.authenticate(auth, headers)
        key = self._key if self._jwks_url is None else await self._jwks_key(token)
        return self.principal(self.decode(token, key))

    def decode(self, token: str, key: Any) -> dict[str, Any]:
        """The verified claims of ``token``; :class:`AuthRefused` with the reason otherwise."""
        jwt = self._jwt
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options=self._options,
            )
        except jwt.ExpiredSignatureError:
            raise AuthRefused("expired", "token expired (exp is in the past); get a new token") from None
        except jwt.ImmatureSignatureError:
            raise AuthRefused("not_yet_valid", "token not yet valid (nbf or iat is in the future)") from None
        except jwt.InvalidAudienceError:
            raise AuthRefused("bad_audience", f"token audience (aud) is not {self._audience!r}") from None
        except jwt.InvalidIssuerError:
            raise AuthRefused("bad_issuer", f"token issuer (iss) is not {self._issuer!r}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthRefused("missing_claim", f"token has no '{exc.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise AuthRefused(
                "bad_signature", "token signature is invalid (wrong key or altered token)"
            ) from None
        except jwt.InvalidAlgorithmError:
            raise AuthRefused("bad_algorithm", f"token algorithm is not one of {self._algorithms}") from None
        except jwt.InvalidTokenError as exc:
            raise AuthRefused("malformed", f"token is not a valid JWT ({type(exc).__name__})") from None
        return claims

    @staticmethod
    def principal(claims: Mapping[str, Any]) -> Principal:
        """The :class:`Principal` of verified ``claims``; :class:`AuthRefused` when a claim is bad."""
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthRefused("bad_claim", "token claim 'sub' must be a non-empty string")
        role = claims.get(CLAIM_ROLE)
        if role is None:
            raise AuthRefused("missing_claim", f'token has no \'{CLAIM_ROLE}\' claim ("agent" or "computer")')
        if role not in _ROLES:
            raise AuthRefused("bad_claim", f'token claim \'{CLAIM_ROLE}\' must be "agent" or "computer"')
        offices = claims.get(CLAIM_OFFICES)
        if offices is None:
            raise AuthRefused("missing_claim", f"token has no '{CLAIM_OFFICES}' claim (a list, or [\"*\"])")
        if not _str_list(offices) or not offices:
            raise AuthRefused(
                "bad_claim", f"token claim '{CLAIM_OFFICES}' must be a non-empty list of strings"
            )
        name = claims.get(CLAIM_NAME)
        if name is not None and (not isinstance(name, str) or not name):
            raise AuthRefused("bad_claim", f"token claim '{CLAIM_NAME}' must be a non-empty string")
        tools = claims.get(CLAIM_TOOLS)
        if tools is not None and not _str_list(tools):
            raise AuthRefused("bad_claim", f"token claim '{CLAIM_TOOLS}' must be a list of strings")
        return Principal(
            sub,
            claims,
            role=role,
            offices=None if "*" in offices else frozenset(offices),
            name=name,
            tools=None if tools is None else tuple(tools),
            personal=True,
        )

    # -- JWKS -----------------------------------------------------------------------------------

    async def _jwks_key(self, token: str) -> Any:
        try:
            kid = self._jwt.get_unverified_header(token).get("kid")
        except self._jwt.InvalidTokenError:
            raise AuthRefused("malformed", "token is not a valid JWT (unreadable header)") from None
        age = time.monotonic() - self._jwks_fetched
        key = self._pick(kid) if age < self._jwks_max_age else None
        if key is None:
            async with self._jwks_lock:
                age = time.monotonic() - self._jwks_fetched
                key = self._pick(kid) if age < self._jwks_max_age else None
                if key is None and age >= self._jwks_min_interval:
                    await self._refresh()
                key = self._pick(kid)
        if key is None:
            raise AuthRefused("unknown_key", f"token key id (kid) {kid!r} is not in the server's key set")
        return key

    def _pick(self, kid: Any) -> Any:
        if isinstance(kid, str):
            return self._jwks.get(kid)
        if kid is None and len(self._jwks) == 1:
            return next(iter(self._jwks.values()))
        return None

    async def _refresh(self) -> None:
        url = self._jwks_url
        assert url is not None
        self._jwks_fetched = time.monotonic()
        try:
            body = await asyncio.to_thread(_fetch, url, self._jwks_timeout)
            keys = self._jwt.PyJWKSet.from_dict(json.loads(body))
        except Exception as exc:
            log.warning("cannot fetch the JWKS from %s: %s", url, exc)
            if not self._jwks:
                raise AuthRefused(
                    "jwks_unavailable", "the server cannot fetch its signing keys; retry later"
                ) from None
            return
        self._jwks = {k.key_id: k.key for k in keys.keys if k.key_id}
        if not self._jwks and len(keys.keys) == 1:
            self._jwks = {"": keys.keys[0].key}
        log.info("fetched %d signing keys from %s", len(self._jwks), url)


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data: bytes = response.read(1024 * 1024)
        return data


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _load_public_key(source: str | Path) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = source.read_bytes() if isinstance(source, Path) else source.encode()
    if b"-----BEGIN" not in text:
        text = Path(source).read_bytes()
    return load_pem_public_key(text)


def _asymmetric_algs(key: Any) -> tuple[str, ...]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return ("RS256", "RS384", "RS512", "PS256")
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("ES256", "ES384", "ES512")
    return ("EdDSA",)


def issue_token(
    secret: str | bytes,
    *,
    sub: str,
    role: str,
    offices: Sequence[str],
    name: str | None = None,
    tools: Sequence[str] | None = None,
    ttl: float = 3600.0,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """An HS256 token with SMCP claims, for development and tests."""
    if role not in _ROLES:
        raise ValueError(f"role must be 'agent' or 'computer', got {role!r}")
    if not offices:
        raise ValueError("a token needs at least one office (or '*')")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, CLAIM_ROLE: role, CLAIM_OFFICES: list(offices), "iat": now}
    claims["exp"] = now + int(ttl)
    if name is not None:
        claims[CLAIM_NAME] = name
    if tools is not None:
        claims[CLAIM_TOOLS] = list(tools)
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    token: str = _jwt().encode(claims, secret, algorithm="HS256")
    return token
