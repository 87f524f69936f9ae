"""Our Agent with signed tokens: the refusal reason is shown, and a token provider is asked again on
every reconnect, so an expired token is replaced by a fresh one."""

from __future__ import annotations

import asyncio
import time

import pytest

from smcp.server.core import JWTAuth, issue_token
from smcp.server.core._socketio_internals import drop_connections
from smcp.testing.server import running

jwt = pytest.importorskip("jwt", reason="PyJWT (smcp-server-core[jwt]) is not installed")

pytestmark = pytest.mark.anyio

SECRET = "s3cret-for-tests-only-0123456789abcdef"


def fresh() -> str:
    return issue_token(SECRET, sub="alice", role="agent", offices=["o1"], ttl=600)


def expired() -> str:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "smcp_role": "agent",
        "smcp_offices": ["o1"],
        "iat": now - 900,
        "exp": now - 300,
    }
    token: str = jwt.encode(claims, SECRET, algorithm="HS256")
    return token


def short_lived(sub: str, role: str) -> str:
    """A token that stays valid for 2-3 s: ``exp`` is in whole seconds (``issue_token`` truncates)."""
    return issue_token(SECRET, sub=sub, role=role, offices=["o1"], ttl=3)


async def until_expired(token: str) -> None:
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, exp - time.time() + 0.1))


async def test_the_agent_shows_the_reason_without_a_traceback() -> None:
    from smcp.agent import AsyncAgent
    from smcp.core.errors import AuthenticationError

    async with running(auth=JWTAuth(secret=SECRET)) as h:
        agent = AsyncAgent(h.url, token=expired(), reconnect=False)
        with pytest.raises(AuthenticationError, match="token expired"):
            await agent.connect()
        await agent.close()


async def test_a_token_provider_is_asked_again_on_every_reconnect() -> None:
    from smcp.agent import AsyncAgent

    handed: list[str] = []
    tokens = iter([fresh(), expired(), fresh()])

    async def provider() -> str:
        handed.append("token")
        return next(tokens, fresh())

    async with running(auth=JWTAuth(secret=SECRET)) as h:
        agent = AsyncAgent(h.url, token=provider, office="o1", name="alice")
        async with agent:
            assert agent.office == "o1" and len(handed) == 1
            await drop_connections(h.server.sio.eio)  # a network failure: the client reconnects
            async with asyncio.timeout(15):
                while agent.office != "o1" or len(handed) < 3:
                    await asyncio.sleep(0.05)
            # the expired token was refused once, then the provider's fresh one got back in
            assert h.server.metrics.auth_failures == {"expired": 1}
            assert len(handed) == 3


async def test_an_expired_fixed_token_ends_the_agents_reconnects() -> None:
    from smcp.agent import AsyncAgent
    from smcp.core.errors import AuthenticationError

    async with running(auth=JWTAuth(secret=SECRET, leeway=0)) as h:
        token = short_lived("alice", "agent")
        agent = AsyncAgent(h.url, token=token, office="o1", name="alice")
        async with agent:
            await until_expired(token)  # the token expires while connected
            await drop_connections(h.server.sio.eio)
            async with asyncio.timeout(15):
                while agent._fatal is None:
                    await asyncio.sleep(0.05)
            assert isinstance(agent._fatal, AuthenticationError)
            assert "token expired" in str(agent._fatal) and "callable token provider" in str(agent._fatal)
            refused = h.server.metrics.auth_failures["expired"]
            await asyncio.sleep(2.5)  # python-socketio would have retried within 0.5-5 s
            assert h.server.metrics.auth_failures == {"expired": refused}
            assert refused <= 2  # the refusal seen, and at most an attempt already under way
            with pytest.raises(AuthenticationError):
                await agent.sessions()


async def test_an_expired_fixed_token_ends_the_computers_reconnects(tmp_path: object) -> None:
    from smcp.computer import Computer
    from smcp.computer._link import ComputerLink
    from smcp.core.errors import AuthenticationError

    async with running(auth=JWTAuth(secret=SECRET, leeway=0)) as h:
        token = short_lived("lap", "computer")
        link = ComputerLink(Computer("lap", []), h.url, token=token)
        try:
            async with asyncio.timeout(20):
                await link.connect()
                await link.join("o1")
                await until_expired(token)
                await drop_connections(h.server.sio.eio)
                fatal = await link.wait_fatal()
            assert isinstance(fatal, AuthenticationError) and "token expired" in str(fatal)
            refused = h.server.metrics.auth_failures["expired"]
            await asyncio.sleep(2.5)  # python-socketio would have retried within 0.5-3 s
            assert h.server.metrics.auth_failures == {"expired": refused}
            assert refused <= 2  # the refusal seen, and at most an attempt already under way
        finally:
            await link.close()
