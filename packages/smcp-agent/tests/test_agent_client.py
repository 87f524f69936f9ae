"""The AsyncAgent against a real in-process Socket.IO server scripted per test."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import time
from typing import Any

import pytest

from smcp.agent import (
    AgentHandler,
    AsyncAgent,
    AuthenticationError,
    ConfigError,
    ConnectionLostError,
    IntegrityError,
    JoinRefusedError,
    LocalTimeoutError,
    Notification,
    ProtocolVersionError,
    SMCPError,
)
from smcp.core.errors import BlobWriteFailedError, NotFoundError

pytestmark = pytest.mark.anyio


def agent_for(server: Any, **kwargs: Any) -> AsyncAgent:
    kwargs.setdefault("token", server.token)
    kwargs.setdefault("office", "o1")
    kwargs.setdefault("name", "a1")
    kwargs.setdefault("request_timeout", 3)
    return AsyncAgent(server.url, **kwargs)


@pytest.mark.parametrize("transports", [("websocket",), ("polling", "websocket")])
async def test_connect_sends_version_token_headers_and_joins(fake_server: Any, transports: Any) -> None:
    async with agent_for(
        fake_server, headers={"x-route": "blue"}, auth={"tenant": "t1"}, transports=transports
    ):
        pass
    first = fake_server.connects[0]
    assert first["auth"] == {"tenant": "t1", "token": "T"}
    assert "a2c_version=0.4.0" in first["environ"]["QUERY_STRING"]
    assert first["environ"].get("HTTP_X_ROUTE") == "blue"
    assert fake_server.events("server:join_office") == [{"role": "agent", "name": "a1", "office_id": "o1"}]
    assert fake_server.events("server:leave_office") == [{"office_id": "o1"}]


async def test_join_refusal_carries_the_server_reason(fake_server: Any) -> None:
    fake_server.replies["server:join_office"] = lambda data: (False, "Agent already in room")
    with pytest.raises(JoinRefusedError) as info:
        async with agent_for(fake_server):
            pass
    assert info.value.reason == "Agent already in room"
    assert "Agent already in room" in str(info.value)


async def test_wrong_token_is_an_authentication_error(fake_server: Any) -> None:
    with pytest.raises(AuthenticationError, match="refused") as info:
        await agent_for(fake_server, token="wrong").connect()
    assert "Connection refused by server" in str(info.value)  # the server's reason


@pytest.mark.parametrize("transports", [("websocket",), ("polling", "websocket")])
async def test_version_rejection_is_typed_and_final(fake_server: Any, transports: Any) -> None:
    agent = agent_for(fake_server, transports=transports)
    agent._protocol_version = "0.5.0"
    with pytest.raises(ProtocolVersionError) as info:
        await agent.connect()
    assert info.value.client_version == "0.5.0" and info.value.max_supported == "0.4.999"
    assert not agent.connected and fake_server.connects == []


async def test_version_rejection_on_reconnect_stops_retrying(fake_server: Any) -> None:
    async with agent_for(fake_server, cache=False) as agent:
        fake_server.gate_version = "0.5.0"
        await fake_server.restart()
        for _ in range(200):
            if agent._fatal is not None:
                break
            await asyncio.sleep(0.05)
        with pytest.raises(ProtocolVersionError) as info:
            await agent.get_tools("c1")
        assert info.value.server_version == "0.5.0" and info.value.client_version == "0.4.0"
        assert not agent.connected
    assert len(fake_server.connects) == 1  # never connected again


async def test_token_provider_is_asked_again_on_reconnect(fake_server: Any) -> None:
    calls: list[int] = []

    async def provider() -> str:
        calls.append(1)
        return "T"

    reconnected = asyncio.Event()
    async with agent_for(fake_server, token=provider) as agent:
        agent.on("reconnected")(reconnected.set)
        await fake_server.restart()
        await asyncio.wait_for(reconnected.wait(), 10)
        assert agent.office == "o1"
    assert len(calls) >= 2
    assert len(fake_server.events("server:join_office")) == 2


async def test_pending_request_fails_fast_when_the_connection_drops(fake_server: Any) -> None:
    async def never(data: dict[str, Any]) -> Any:
        await asyncio.sleep(30)

    fake_server.replies["client:get_desktop"] = never
    async with agent_for(fake_server, request_timeout=20, reconnect=False) as agent:
        task = asyncio.create_task(agent.get_desktop("c1"))
        await asyncio.sleep(0.3)
        start = time.monotonic()
        await fake_server.kick()
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(task, 5)
        assert time.monotonic() - start < 2


async def test_silence_is_a_local_timeout(fake_server: Any) -> None:
    async def never(data: dict[str, Any]) -> Any:
        await asyncio.sleep(30)

    fake_server.replies["client:get_config"] = never
    async with agent_for(fake_server, request_timeout=0.5, cache=False) as agent:
        with pytest.raises(LocalTimeoutError) as info:
            await agent.get_config("c1")
        assert isinstance(info.value, TimeoutError) and "client:get_config" in str(info.value)


@pytest.mark.parametrize(
    ("reply", "expect_cancel"),
    [
        (None, True),  # silence: the Agent's own deadline
        (
            {"code": 408, "message": "relay deadline passed"},
            True,
        ),  # our server answers 408 (docs/protocol.md, difference B1)
    ],
    ids=["silence", "server-408"],
)
async def test_tool_call_timeout_returns_a2c_timeout_and_cancels(
    fake_server: Any, reply: Any, expect_cancel: bool
) -> None:
    async def slow(data: dict[str, Any]) -> Any:
        if reply is not None:
            return reply
        await asyncio.sleep(30)

    fake_server.replies["client:tool_call"] = slow
    async with agent_for(fake_server, tool_call_grace=0.2, cache=False) as agent:
        result = await agent.call_tool("c1", "tb__echo", {"text": "x"}, timeout=0.5, req_id="r1")
        assert result.is_error and result.meta == {"a2c_timeout": True}
        await asyncio.sleep(0.2)
    call = fake_server.events("client:tool_call")[0]
    assert call["timeout"] == 1 and call["req_id"] == "r1"
    assert fake_server.events("server:tool_call_cancel") == [{"agent": "a1", "req_id": "r1"}]


async def test_cancelling_the_task_cancels_on_the_computer(fake_server: Any) -> None:
    async def slow(data: dict[str, Any]) -> Any:
        await asyncio.sleep(30)

    fake_server.replies["client:tool_call"] = slow
    async with agent_for(fake_server, cache=False) as agent:
        task = asyncio.create_task(agent.call_tool("c1", "tb__echo", {}, timeout=20, req_id="r9"))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)
    assert fake_server.events("server:tool_call_cancel") == [{"agent": "a1", "req_id": "r9"}]


async def test_a_result_over_aiohttps_4_mib_default_arrives(fake_server: Any) -> None:
    text = "x" * (6 * 1024 * 1024)
    fake_server.replies["client:tool_call"] = lambda data: {
        "content": [{"type": "text", "text": text}],
        "isError": False,
    }
    async with agent_for(fake_server, cache=False) as agent:
        result = await agent.call_tool("c1", "tb__echo", {}, timeout=20)
        assert result.content[0].text == text  # type: ignore[union-attr]
        assert agent.connected


async def test_error_payload_on_tool_call_raises_typed_error(fake_server: Any) -> None:
    fake_server.replies["client:tool_call"] = lambda data: {
        "code": 404,
        "message": "Computer with name 'zz' not found",
        "details": {"computer_name": "zz"},
    }
    async with agent_for(fake_server, cache=False) as agent:
        with pytest.raises(NotFoundError) as info:
            await agent.call_tool("zz", "tb__echo", {}, timeout=5)
    assert info.value.details == {"computer_name": "zz"}
    assert str(info.value) == "[404] Computer with name 'zz' not found"


def _blob_server(fake_server: Any, data: bytes, *, lie_sha: bool = False, chunk: int = 1000) -> list[int]:
    offsets: list[int] = []
    digest = hashlib.sha256(b"other" if lie_sha else data).hexdigest()

    def get_blob(req: dict[str, Any]) -> Any:
        offset = req.get("chunk_offset", 0)
        offsets.append(offset)
        piece = data[offset : offset + chunk]
        return {
            "blob_handle": req["blob_handle"],
            "mime_type": "image/png",
            "total_size": len(data),
            "sha256": digest,
            "chunk_offset": offset,
            "eof": offset + len(piece) >= len(data),
            "blob": base64.b64encode(piece).decode(),
            "req_id": req["req_id"],
        }

    fake_server.replies["client:get_blob"] = get_blob
    return offsets


async def test_sideband_items_are_restored_from_blobs(fake_server: Any) -> None:
    data = bytes(range(256)) * 20
    offsets = _blob_server(fake_server, data)
    sideband = {
        "a2c_blob_handle": "h1",
        "a2c_total_size": len(data),
        "a2c_sha256": hashlib.sha256(data).hexdigest(),
    }
    fake_server.replies["client:tool_call"] = lambda req: {
        "meta": None,
        "content": [
            {
                "type": "image",
                "data": "",
                "mimeType": "image/png",
                "annotations": None,
                "meta": None,
                "_meta": sideband,
            },
            {
                "type": "resource",
                "resource": {"uri": "file:///x", "blob": "", "mimeType": "image/png"},
                "_meta": dict(sideband, keep="me"),
            },
        ],
        "structuredContent": None,
        "isError": False,
    }
    async with agent_for(fake_server, cache=False) as agent:
        result = await agent.call_tool("c1", "tb__image", {}, timeout=5)
    image, resource = result.content
    assert base64.b64decode(image.data) == data  # type: ignore[union-attr]
    assert image.meta is None
    assert base64.b64decode(resource.resource.blob) == data  # type: ignore[union-attr]
    assert resource.meta == {"keep": "me"}
    assert offsets == [0, 1000, 2000, 3000, 4000, 5000] * 2


async def test_blob_digest_mismatch_is_an_integrity_error(fake_server: Any) -> None:
    offsets = _blob_server(fake_server, b"x" * 2500, lie_sha=True)
    async with agent_for(fake_server, cache=False) as agent:
        with pytest.raises(IntegrityError, match="3 attempts"):
            await agent.download_blob("c1", "h1")
    assert offsets.count(0) == 3


async def test_blob_download_resumes_after_a_lost_chunk(fake_server: Any) -> None:
    data = b"abcdefghij" * 300
    inner = _blob_server(fake_server, data)
    served = fake_server.replies["client:get_blob"]
    dropped: list[int] = []
    asked: list[int] = []

    async def flaky(req: dict[str, Any]) -> Any:
        asked.append(req["chunk_offset"])
        if req.get("chunk_offset") == 2000 and not dropped:
            dropped.append(1)
            await asyncio.sleep(30)
        return served(req)

    fake_server.replies["client:get_blob"] = flaky
    async with agent_for(fake_server, cache=False, blob_timeout=0.5) as agent:
        blob = await agent.download_blob("c1", "h1")
    assert blob.data == data and blob.mime_type == "image/png"
    assert asked == [0, 1000, 2000, 2000]  # resumed at 2000, never restarted from 0
    assert inner == [0, 1000, 2000]


async def test_put_blob_sends_a_session_and_reports_progress(fake_server: Any) -> None:
    uploads: list[dict[str, Any]] = []
    received = bytearray()

    def put_blob(req: dict[str, Any]) -> Any:
        uploads.append(req)
        received.extend(base64.b64decode(req["blob"]))
        ack = {
            "upload_id": req.get("upload_id", "u1"),
            "chunk_offset": req["chunk_offset"],
            "req_id": req["req_id"],
        }
        if req["eof"]:
            ack.update(
                landing_path="/land/u1_a.bin",
                total_size=len(received),
                sha256=hashlib.sha256(received).hexdigest(),
            )
        return ack

    fake_server.replies["client:put_blob"] = put_blob
    progress: list[tuple[int, int]] = []
    data = b"q" * 2500
    async with agent_for(fake_server, cache=False) as agent:
        result = await agent.put_blob(
            "c1", data, name_hint="a.bin", chunk_size=1000, progress=lambda d, t: progress.append((d, t))
        )
    assert result.landing_path == "/land/u1_a.bin" and bytes(received) == data
    assert [u["chunk_offset"] for u in uploads] == [0, 1000, 2000]
    assert (
        uploads[0]["total_size"] == 2500
        and "upload_id" not in uploads[0]
        and uploads[0]["name_hint"] == "a.bin"
    )
    assert all(u["upload_id"] == "u1" and "sha256" not in u for u in uploads[1:])
    assert progress == [(1000, 2500), (2000, 2500), (2500, 2500)]


async def test_put_blob_error_is_typed(fake_server: Any) -> None:
    fake_server.replies["client:put_blob"] = lambda req: {
        "code": 4019,
        "message": "landing root not configured",
        "details": {"reason": "forbidden"},
    }
    async with agent_for(fake_server, cache=False) as agent:
        with pytest.raises(BlobWriteFailedError) as info:
            await agent.put_blob("c1", b"abc")
    assert info.value.reason == "forbidden"


async def test_inline_skill_body_is_checked_against_sha256(fake_server: Any) -> None:
    body = "# Skill\n"
    fake_server.replies["client:get_skill"] = lambda req: {
        "name": req["name"],
        "rel_path": "SKILL.md",
        "mime_type": "text/markdown",
        "total_size": len(body),
        "sha256": hashlib.sha256(b"tampered").hexdigest(),
        "body": body,
        "req_id": req["req_id"],
    }
    async with agent_for(fake_server, cache=False) as agent:
        with pytest.raises(IntegrityError):
            await agent.get_skill("c1", "demo")


async def test_resource_paging_loop_is_detected(fake_server: Any) -> None:
    fake_server.replies["client:get_resources"] = lambda req: {
        "resources": [{"uri": f"mem://{req.get('cursor', '0')}", "name": "x"}],
        "next_cursor": "same",
        "req_id": req["req_id"],
    }
    async with agent_for(fake_server, cache=False) as agent:
        seen = []
        with pytest.raises(Exception, match="loops"):
            async for resource in agent.iter_resources("c1", "srv"):
                seen.append(resource.uri)
    assert seen == ["mem://0", "mem://same"]


class Recorder(AgentHandler):
    def __init__(self) -> None:
        self.notes: list[Notification] = []

    async def on_update_config(self, note: Notification) -> None:
        self.notes.append(note)

    def on_leave_office(self, note: Notification) -> None:
        self.notes.append(note)


async def test_notifications_refresh_the_cache_coalesced(fake_server: Any) -> None:
    recorder = Recorder()
    async with agent_for(fake_server, handler=recorder) as agent:
        await agent.cache.wait_idle(5)
        view = agent.cache.get("c1")
        assert view is not None and view.rounds == 1 and view.tools and view.config is not None
        before = (len(fake_server.events("client:get_tools")), len(fake_server.events("client:get_config")))
        for _ in range(10):
            await fake_server.notify("notify:update_config", {"computer": "c1"})
        await asyncio.sleep(0.3)
        await agent.cache.wait_idle(5)
        after = (len(fake_server.events("client:get_tools")), len(fake_server.events("client:get_config")))
        assert len(recorder.notes) == 10
        assert view.rounds <= 3  # ten notifications, at most a couple of refresh rounds
        assert 1 <= after[0] - before[0] <= 2 and 1 <= after[1] - before[1] <= 2

        await fake_server.notify("notify:enter_office", {"office_id": "o1", "computer": "c2"})
        await asyncio.sleep(0.2)
        await agent.cache.wait_idle(5)
        assert set(agent.cache.computers()) == {"c1", "c2"}
        await fake_server.notify("notify:leave_office", {"office_id": "o1", "computer": "c2"})
        await asyncio.sleep(0.2)
        assert agent.cache.computers() == ["c1"]
        assert recorder.notes[-1].kind == "leave_office" and recorder.notes[-1].computer == "c2"


async def test_handler_errors_are_isolated(fake_server: Any) -> None:
    async with agent_for(fake_server, cache=False) as agent:
        got: list[str] = []

        @agent.on("update_tool_list")
        def broken(note: Notification) -> None:
            raise RuntimeError("handler bug")

        @agent.on("update_tool_list")
        async def fine(note: Notification) -> None:
            got.append(note.computer or "")

        await fake_server.notify("notify:update_tool_list", {"computer": "c1"})
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got == ["c1"]
        assert (await agent.call_tool("c1", "tb__echo", {"text": "still ok"}, timeout=5)).content[
            0
        ].text == "still ok"  # type: ignore[union-attr]


async def test_unknown_handler_event_is_rejected(fake_server: Any) -> None:
    agent = agent_for(fake_server)
    with pytest.raises(ValueError, match="unknown event"):
        agent.on("update_everything")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({"tools": "nope", "req_id": "x"}, "MalformedReplyError"),
        ({"code": 500, "message": "Internal server error"}, "InternalError"),
        ({"code": 403, "message": "agents only"}, "ForbiddenError"),
        ({"code": 503, "message": "server shutting down"}, "SMCPError"),
        (None, "MalformedReplyError"),
    ],
    ids=["malformed", "500", "403", "unknown-code", "empty-ack"],
)
async def test_bad_replies_are_typed(fake_server: Any, reply: Any, error: str) -> None:
    fake_server.replies["client:get_skills"] = lambda req: reply
    async with agent_for(fake_server, cache=False) as agent:
        with pytest.raises(Exception) as info:
            await agent.get_skills("c1")
    assert type(info.value).__name__ == error


async def test_repl_completion_uses_the_cache(fake_server: Any) -> None:
    from smcp.agent.cli import repl_completions

    async with agent_for(fake_server) as agent:
        await agent.cache.wait_idle(5)
        assert repl_completions(agent, [], "to") == ["tools"]
        assert repl_completions(agent, ["call"], "") == ["c1"]
        assert repl_completions(agent, ["call", "c1"], "tb__e") == ["tb__echo"]
        assert repl_completions(agent, ["call", "c1", "tb__echo"], "") == []


@pytest.mark.parametrize("code", [503, 599])
async def test_a_flat_error_with_an_unknown_code_on_tool_call_raises(fake_server: Any, code: int) -> None:
    fake_server.replies["client:tool_call"] = lambda data: {"code": code, "message": "server shutting down"}
    async with agent_for(fake_server, cache=False) as agent:
        with pytest.raises(SMCPError) as info:
            await agent.call_tool("c1", "tb__echo", {}, timeout=5)
    assert info.value.error_code == code and "shutting down" in str(info.value)


async def test_invalid_request_fields_are_a_local_config_error(fake_server: Any) -> None:
    async with agent_for(fake_server, cache=False) as agent:
        with pytest.raises(ConfigError, match="window"):
            await agent.get_desktop("c1", window="w" * 5000)
        with pytest.raises(ConfigError, match="tool_name"):
            await agent.call_tool("c1", "t" * 2000, {}, timeout=5)
        with pytest.raises(ConfigError):
            await agent.call_tool("c1", "tb__echo", {}, timeout=0)
    assert fake_server.events("client:get_desktop") == [] and fake_server.events("client:tool_call") == []


async def test_a_made_up_client_event_needs_only_a_table_line(
    fake_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event added to (a copy of) the table is sent, timed and parsed by ``_request`` alone."""
    import enum
    from types import MappingProxyType

    from smcp.agent import _client
    from smcp.core.events import EVENTS, EventSpec
    from smcp.core.models import GetToolsRet
    from smcp.core.roles import Role

    class MadeUp(enum.StrEnum):
        GET_GADGETS = "client:get_gadgets"

    from smcp.core import wire

    spec = EventSpec(
        MadeUp.GET_GADGETS.value,
        "GetToolsReq",
        "GetToolsRet",
        frozenset({Role.AGENT}),
        "object",
        timeout="default",
    )
    table = MappingProxyType({**EVENTS, spec.name: spec})
    monkeypatch.setattr(_client, "EVENTS", table)
    monkeypatch.setattr(wire, "EVENTS", table)
    fake_server.replies["client:get_gadgets"] = fake_server.replies["client:get_tools"]
    async with agent_for(fake_server, cache=False) as agent:
        ret = await agent._request(MadeUp.GET_GADGETS, computer="c1")  # type: ignore[arg-type]
    assert isinstance(ret, GetToolsRet) and [t.name for t in ret.tools] == ["tb__echo"]
    (sent,) = fake_server.events("client:get_gadgets")
    assert sent["agent"] == "a1" and sent["computer"] == "c1" and sent["req_id"] == ret.req_id


async def test_cli_failures_are_one_line_from_one_base_class(fake_server: Any) -> None:
    from typer.testing import CliRunner

    from smcp.agent.cli import app

    runner = CliRunner()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cases = [
        (["--url", "127.0.0.1:1"], "error: invalid server URL"),
        (["--url", f"http://127.0.0.1:{port}"], "error: the server could not be reached"),
        (["--url", fake_server.url, "--token", "wrong"], "error: the server refused the connection"),
    ]
    for args, line in cases:
        result = await asyncio.to_thread(runner.invoke, app, [*args, "--office", "o1", "computers"])
        assert result.exit_code == 1, result.output
        assert line in result.output
