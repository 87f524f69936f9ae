"""Our Agent against our server with the official Computer.

The server runs either as the ``smcp-server`` subprocess or in this process (``smcp.server.core``
under uvicorn on a pre-bound port-0 socket). Each variant is skipped while its package is not
installed next to the test interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from smcp.agent import AsyncAgent, JoinRefusedError, ProtocolVersionError
from smcp.core.errors import NotFoundError

from .harness import (
    ManagedProcess,
    ProcessManager,
    start_official_computer,
    toolbox_config,
)

pytestmark = [pytest.mark.anyio, pytest.mark.official]

TOKEN = "e2e-secret"


def server_argv(port: int = 0) -> list[str]:
    script = shutil.which("smcp-server", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("smcp-server is not installed in this environment (packages/smcp-server-asgi)")
    return [script, "--host", "127.0.0.1", "--port", str(port), "--token", TOKEN]


async def start_ours(procs: ProcessManager, name: str = "smcp-server", port: int = 0) -> ManagedProcess:
    return await procs.astart(name, server_argv(port), ready=r"LISTENING (\d+)", timeout=60)


@contextlib.asynccontextmanager
async def in_process_server(port: int = 0, **settings: Any) -> AsyncIterator[str]:
    """Our server core in this event loop, behind its version gate, served by uvicorn."""
    core = pytest.importorskip("smcp.server.core")
    socketio = pytest.importorskip("socketio")
    uvicorn = pytest.importorskip("uvicorn")
    server = core.SMCPServer(core.ServerSettings(**settings), core.TokenAuth(TOKEN))
    app = core.VersionGate(socketio.ASGIApp(server.sio))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    try:
        for _ in range(250):
            if uv.started:
                break
            await asyncio.sleep(0.02)
        assert uv.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        uv.should_exit = True
        uv.force_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


async def start_computer(procs: ProcessManager, tmp_path: Path, url: str) -> None:
    config = toolbox_config(tmp_path / "mcp.json")
    await start_official_computer(
        procs, url=url, office="o1", name="c1", config=config, landing_root=tmp_path / "landing"
    )


async def start_stack(procs: ProcessManager, tmp_path: Path) -> tuple[str, ManagedProcess]:
    server = await start_ours(procs)
    url = f"http://127.0.0.1:{server.port}"
    await start_computer(procs, tmp_path, url)
    return url, server


async def test_every_method_against_our_server(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    url, _ = await start_stack(procs, tmp_path)
    await every_method(url)


async def test_every_method_against_our_server_in_process(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    async with in_process_server() as url:
        await start_computer(procs, tmp_path, url)
        await every_method(url)


async def test_timeout_and_cache_refresh_in_process(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    async with in_process_server(grace=3.0) as url:
        await start_computer(procs, tmp_path, url)
        async with AsyncAgent(url, token=TOKEN, office="o1", name="a1", tool_call_grace=3.0) as agent:
            await agent.cache.wait_idle(30)
            start = time.monotonic()
            slow = await agent.call_tool("c1", "toolbox__slow_echo", {"text": "x", "seconds": 30}, timeout=1)
            assert (slow.meta or {}).get("a2c_timeout") is True
            assert time.monotonic() - start < 4.5  # the Computer's own timeout result, not the Agent's
            view = agent.cache.get("c1")
            assert view is not None
            await agent.call_tool("c1", "toolbox__grow", {}, timeout=10)
            deadline = time.monotonic() + 20
            while "toolbox__extra" not in {t.name for t in view.tools or ()}:
                assert time.monotonic() < deadline, "the cache never saw the new tool"
                await asyncio.sleep(0.1)


async def every_method(url: str) -> None:
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1") as agent:
        await agent.cache.wait_idle(30)
        view = agent.cache.get("c1")
        assert view is not None and view.tools and view.config is not None
        assert [c.name for c in await agent.computers()] == ["c1"]
        assert "toolbox__echo" in {t.name for t in await agent.get_tools("c1")}
        assert list((await agent.get_config("c1")).servers) == ["toolbox"]
        assert len(await agent.get_desktop("c1", size=1)) == 1
        assert len([r async for r in agent.iter_resources("c1", "toolbox")]) == 32
        assert await agent.get_skills("c1") == []
        echo = await agent.call_tool("c1", "toolbox__echo", {"text": "ours"}, timeout=10)
        assert echo.content[0].text == "ours"  # type: ignore[union-attr]
        image = await agent.call_tool("c1", "toolbox__image", {"n_bytes": 60_000}, timeout=20)
        assert image.content[0].data and not (image.content[0].meta or {}).get("a2c_blob_handle")  # type: ignore[union-attr]
        landed = await agent.put_blob("c1", b"z" * 300_000, name_hint="z.bin")
        assert Path(landed.landing_path).stat().st_size == 300_000
        start = time.monotonic()
        with pytest.raises(NotFoundError):
            await agent.get_tools("nobody")
        assert time.monotonic() - start < 2  # our server answers instead of staying silent


async def test_computer_timeout_result_arrives_and_cancel_works(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    url, _ = await start_stack(procs, tmp_path)
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1", cache=False) as agent:
        start = time.monotonic()
        slow = await agent.call_tool("c1", "toolbox__slow_echo", {"text": "x", "seconds": 30}, timeout=1)
        assert slow.is_error and (slow.meta or {}).get("a2c_timeout") is True
        assert time.monotonic() - start < 6  # the Computer's own result, relayed within the grace period
        task = asyncio.create_task(
            agent.call_tool("c1", "toolbox__slow_echo", {"text": "x", "seconds": 30}, timeout=20, req_id="rc")
        )
        await asyncio.sleep(1)
        await agent.cancel("rc")
        cancelled = await asyncio.wait_for(task, 15)
        assert (cancelled.meta or {}).get("a2c_cancelled") is True


async def test_version_rejection_and_refused_second_agent(procs: ProcessManager, official_py: str) -> None:
    server = await start_ours(procs)
    url = f"http://127.0.0.1:{server.port}"
    for transports in (("websocket",), ("polling", "websocket")):
        old = AsyncAgent(url, token=TOKEN, transports=transports)
        old._protocol_version = "0.3.0"
        with pytest.raises(ProtocolVersionError) as info:
            await old.connect()
        assert info.value.client_version == "0.3.0" and info.value.server_version == "0.4.0"
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1"):
        with pytest.raises(JoinRefusedError):
            async with AsyncAgent(url, token=TOKEN, office="o1", name="a2"):
                pass


async def test_reconnect_after_our_server_restarts(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    server = await start_ours(procs)
    url = f"http://127.0.0.1:{server.port}"
    reconnected = asyncio.Event()
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1") as agent:
        agent.on("reconnected")(reconnected.set)
        server.stop()
        await start_ours(procs, "smcp-server-2", server.port)
        await asyncio.wait_for(reconnected.wait(), 30)
        assert [s.name for s in await agent.sessions()] == ["a1"]


async def test_version_join_and_reconnect_in_process(official_py: str) -> None:
    async with in_process_server() as url:
        for transports in (("websocket",), ("polling", "websocket")):
            old = AsyncAgent(url, token=TOKEN, transports=transports)
            old._protocol_version = "0.3.0"
            with pytest.raises(ProtocolVersionError) as info:
                await old.connect()
            assert (info.value.client_version, info.value.max_supported) == ("0.3.0", "0.4.999")
        agent = AsyncAgent(url, token=TOKEN, office="o1", name="a1", cache=False)
        await agent.__aenter__()
        try:
            with pytest.raises(JoinRefusedError):
                async with AsyncAgent(url, token=TOKEN, office="o1", name="a2"):
                    pass
            reconnected = asyncio.Event()
            agent.on("reconnected")(reconnected.set)
        except BaseException:
            await agent.close()
            raise
    port = int(url.rsplit(":", 1)[1])
    try:
        async with in_process_server(port) as again:
            assert again == url
            await asyncio.wait_for(reconnected.wait(), 30)
            assert [s.name for s in await agent.sessions()] == ["a1"]
    finally:
        await agent.close()


async def test_sync_agent_in_a_plain_thread_in_process(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    from smcp.agent import Agent

    async with in_process_server() as url:
        await start_computer(procs, tmp_path, url)

        def work() -> dict[str, Any]:
            with Agent(url, token=TOKEN, office="o1", name="sync") as agent:
                agent.wait_cache_idle(30)
                return {
                    "cached": [t.name for _, t in agent.cache.tools("c1")],
                    "echo": agent.call_tool("c1", "toolbox__echo", {"text": "s"}, timeout=10).content[0].text,  # type: ignore[union-attr]
                    "desktop": len(agent.get_desktop("c1", size=1)),
                }

        outcome = await asyncio.wait_for(asyncio.to_thread(work), 90)
    assert "toolbox__echo" in outcome["cached"]
    assert outcome["echo"] == "s" and outcome["desktop"] == 1
