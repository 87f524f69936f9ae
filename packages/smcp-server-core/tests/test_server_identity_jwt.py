"""JWTAuth: every refusal reason at connect (HS256, RS256, a JWKS with key rotation), as clients see it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import socketio

from smcp.server.core import JWTAuth, ServerSettings, issue_token
from smcp.testing.server import NS, running, serve

jwt = pytest.importorskip("jwt", reason="PyJWT (smcp-server-core[jwt]) is not installed")

pytestmark = pytest.mark.anyio

SECRET = "s3cret-for-tests-only-0123456789abcdef"


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "alice", "smcp_role": "agent", "smcp_offices": ["o1"], "iat": now, "exp": now + 600}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def hs(**extra: Any) -> str:
    token: str = jwt.encode(claims(**extra), SECRET, algorithm="HS256")
    return token


async def refusal(url: str, token: str | None, headers: dict[str, str] | None = None) -> str:
    """The message of the server's connect refusal."""
    message: str = (await refused(url, token, headers))["message"]
    return message


async def refused(url: str, token: str | None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The server's CONNECT_ERROR data."""
    sio = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    sio.on("connect_error", got.append, namespace=NS)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            f"{url}?a2c_version=0.4.0",
            auth=None if token is None else {"token": token},
            headers=headers or {},
            namespaces=[NS],
            transports=["websocket"],
            wait_timeout=5,
        )
    assert got, "no connect_error"
    data: dict[str, Any] = got[0]
    return data


async def test_hs256_refusal_reasons_are_shown_and_counted() -> None:
    auth = JWTAuth(secret=SECRET, issuer="https://issuer.test", audience="smcp", leeway=2)
    good = dict(iss="https://issuer.test", aud="smcp")
    async with running(auth=auth) as h:
        cases = {
            "missing_token": (None, "no token"),
            "bad_signature": (
                jwt.encode(claims(**good), "other-secret-0123456789abcdef0123", "HS256"),
                "signature",
            ),
            "expired": (hs(**good, exp=int(time.time()) - 60), "expired"),
            "not_yet_valid": (hs(**good, nbf=int(time.time()) + 300), "not yet valid"),
            "bad_audience": (hs(iss="https://issuer.test", aud="other"), "audience"),
            "bad_issuer": (hs(iss="https://evil.test", aud="smcp"), "issuer"),
            "missing_claim": (hs(**good, smcp_role=None), "smcp_role"),
            "bad_claim": (hs(**good, smcp_offices="o1"), "smcp_offices"),
            "malformed": ("not.a.jwt", "not a valid JWT"),
        }
        for reason, (token, words) in cases.items():
            message = await refusal(h.url, token)
            assert words in message, (reason, message)
            assert message.startswith("Connection refused by server: ")
            if token:
                assert token not in message
        assert h.server.metrics.auth_failures == dict.fromkeys(cases, 1)
        # the reason as data too (optional on the wire): a client can tell a bad token from a busy server
        assert (await refused(h.url, cases["expired"][0]))["data"] == {"code": 401, "reason": "expired"}
        assert h.server.metrics.auth_failures_total == len(cases) + 1
        # a valid token connects, in auth.token or as an Authorization: Bearer header
        peer = await h.peer(token=hs(**good))
        assert await peer.join("agent", "alice") == (True, None)
        bearer = socketio.AsyncClient(reconnection=False)
        await bearer.connect(
            f"{h.url}?a2c_version=0.4.0",
            headers={"Authorization": f"Bearer {hs(**good, sub='bob')}"},
            namespaces=[NS],
            transports=["websocket"],
            wait_timeout=5,
        )
        assert bearer.connected
        await bearer.disconnect()


async def test_rs256_public_key_and_a_token_signed_by_another_key(tmp_path: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "key.pem"
    path.write_bytes(pem)
    rsa_key = _rsa()
    rsa_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    async with running(auth=JWTAuth(public_key=rsa_pem.decode())) as h:
        ok = await h.peer(token=jwt.encode(claims(), rsa_key, algorithm="RS256"))
        assert ok.sio.connected
        forged = jwt.encode(claims(), _rsa(), algorithm="RS256")
        assert "signature" in await refusal(h.url, forged)
        # an HS256 token "signed" with the public key text must not pass (algorithm confusion)
        assert "algorithm" in await refusal(h.url, hs())
    async with running(auth=JWTAuth(public_key=path)) as h:
        assert (await h.peer(token=jwt.encode(claims(), key, algorithm="ES256"))).sio.connected
        assert "signature" in await refusal(h.url, jwt.encode(claims(), other, algorithm="ES256"))


def _rsa() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: Any, kid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "alg": "RS256", "use": "sig"}


async def test_jwks_with_key_rotation() -> None:
    first, second = _rsa(), _rsa()
    served = {"keys": [_jwk(first, "k1")]}
    fetches: list[str] = []

    async def jwks_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        fetches.append(scope["path"])
        body = json.dumps(served).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async with serve(jwks_app) as jwks_url:
        auth = JWTAuth(jwks_url=f"{jwks_url}/jwks.json", jwks_min_interval=0.2, jwks_max_age=1.0)
        async with running(ServerSettings(), auth=auth) as h:
            token1 = jwt.encode(claims(), first, algorithm="RS256", headers={"kid": "k1"})
            assert (await h.peer(token=token1)).sio.connected
            assert (await h.peer(token=token1)).sio.connected
            assert len(fetches) == 1  # cached
            # the issuer rotates (both keys published): a token with the new kid makes the server fetch again
            served["keys"] = [_jwk(first, "k1"), _jwk(second, "k2")]
            await asyncio.sleep(0.25)
            token2 = jwt.encode(claims(sub="bob"), second, algorithm="RS256", headers={"kid": "k2"})
            assert (await h.peer(token=token2)).sio.connected
            assert len(fetches) == 2
            # an unknown kid is refused (and does not make the server fetch on every attempt)
            stray = jwt.encode(claims(), _rsa(), algorithm="RS256", headers={"kid": "k9"})
            assert "kid" in await refusal(h.url, stray)
            assert "kid" in await refusal(h.url, stray)
            assert len(fetches) <= 3
            assert h.server.metrics.auth_failures == {"unknown_key": 2}
            # the issuer withdraws k1: once the cached set is jwks_max_age old it is fetched again
            assert (await h.peer(token=token1)).sio.connected
            served["keys"] = [_jwk(second, "k2")]
            await asyncio.sleep(1.05)
            assert "kid" in await refusal(h.url, token1)
            assert (await h.peer(token=token2)).sio.connected


async def test_jwks_unreachable_is_a_clear_refusal() -> None:
    auth = JWTAuth(jwks_url="http://127.0.0.1:9/jwks.json", jwks_timeout=1)
    async with running(auth=auth) as h:
        token = jwt.encode(claims(), _rsa(), algorithm="RS256", headers={"kid": "k1"})
        assert "signing keys" in await refusal(h.url, token)
        assert h.server.metrics.auth_failures == {"jwks_unavailable": 1}


def test_issue_token_round_trips_and_validates_input() -> None:
    token = issue_token(SECRET, sub="c1", role="computer", offices=["o1"], name="comp1", tools=None, ttl=60)
    principal = JWTAuth.principal(JWTAuth(secret=SECRET).decode(token, SECRET.encode()))
    assert (principal.id, principal.role, principal.offices, principal.name) == (
        "c1",
        "computer",
        frozenset({"o1"}),
        "comp1",
    )
    assert principal.personal and principal.tools is None
    star = JWTAuth.principal(
        {"sub": "x", "smcp_role": "agent", "smcp_offices": ["*"], "smcp_tools": ["get_*"]}
    )
    assert star.offices is None and star.tools == ("get_*",)
    with pytest.raises(ValueError, match="role"):
        issue_token(SECRET, sub="x", role="admin", offices=["o1"])
    with pytest.raises(ValueError, match="exactly one"):
        JWTAuth(secret=SECRET, jwks_url="http://127.0.0.1/")
