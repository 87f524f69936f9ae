"""Our Agent against the official 0.4.2 server and the official Computer (separate processes).

The Computer hosts the toolbox MCP server (``smcp.testing.mcp_servers``) over stdio and one user
skill; every Agent method, the timeout/cancel paths, the 4008 rejection, the notification-driven
cache refresh, reconnection after a server restart and the sync Agent are exercised here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from smcp.agent import (
    Agent,
    AsyncAgent,
    ConnectionLostError,
    JoinRefusedError,
    ProtocolVersionError,
    SMCPError,
)
from smcp.core.errors import BlobNotAccessibleError, NotFoundError, SkillNameInvalidError

from .harness import (
    ProcessManager,
    start_official_computer,
    start_official_server,
    toolbox_config,
)

pytestmark = [pytest.mark.anyio, pytest.mark.official]

TOKEN = "e2e-secret"
BIG_SKILL_FILE = ("0123456789abcdef" * 4096).encode()  # 64 KiB: over the 32 KiB inline budget


def make_skill_home(root: Path) -> Path:
    skill = root / "user" / "demo-skill"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        "---\nname: demo-skill\ndescription: A demo skill\n---\n# Demo\nUse it well.\n", encoding="utf-8"
    )
    (skill / "big.txt").write_bytes(BIG_SKILL_FILE)
    return root


async def start_stack(
    procs: ProcessManager, tmp_path: Path, *, page_size: int | None = None, port: int | None = None
) -> tuple[str, Any]:
    server = await start_official_server(procs)
    url = f"http://127.0.0.1:{server.port}"
    config = toolbox_config(tmp_path / "mcp.json", *(["--page-size", str(page_size)] if page_size else []))
    skill_home = make_skill_home(tmp_path / "skills")
    await start_official_computer(
        procs,
        url=url,
        office="o1",
        name="c1",
        config=config,
        landing_root=tmp_path / "landing",
        env={"A2C_SKILL_HOME": str(skill_home)},
    )
    return url, server


async def test_every_method_against_official_stack(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    url, _ = await start_stack(procs, tmp_path, page_size=7)
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1") as agent:
        await agent.cache.wait_idle(30)
        view = agent.cache.get("c1")
        assert view is not None and view.tools and view.config is not None and view.skills is not None
        assert "toolbox__echo" in {t.name for t in view.tools}
        assert list(view.config.servers) == ["toolbox"]

        sessions = await agent.sessions()
        assert {(s.name, s.role) for s in sessions} == {("a1", "agent"), ("c1", "computer")}
        assert [c.name for c in await agent.computers()] == ["c1"]

        tools = await agent.get_tools("c1")
        assert {t.bundle_id for t in tools} == {"toolbox"}
        config = await agent.get_config("c1")
        assert config.servers["toolbox"].type == "stdio"

        desktop = await agent.get_desktop("c1")
        assert [d.split("\n")[0] for d in desktop] == ["window://toolbox/main", "window://toolbox/side"]
        assert len(await agent.get_desktop("c1", size=1)) == 1
        only = await agent.get_desktop("c1", window="window://toolbox/side")
        assert only and only[0].startswith("window://toolbox/side")

        first = await agent.get_resources("c1", "toolbox")
        assert len(first.resources) == 7 and first.next_cursor
        every = [r.uri async for r in agent.iter_resources("c1", "toolbox")]
        assert len(every) == 32 and len(set(every)) == 32

        skills = await agent.get_skills("c1")
        assert [s.name for s in skills] == ["demo-skill"]
        skill_md = await agent.get_skill("c1", "demo-skill")
        assert skill_md.text == "# Demo\nUse it well.\n" and skill_md.mime_type == "text/markdown"
        big = await agent.get_skill("c1", "demo-skill", "big.txt")  # arrives as a blob handle, drained
        assert big.data == BIG_SKILL_FILE and big.sha256 == hashlib.sha256(BIG_SKILL_FILE).hexdigest()

        echo = await agent.call_tool("c1", "toolbox__echo", {"text": "hi"}, timeout=10)
        assert not echo.is_error and echo.content[0].text == "hi"  # type: ignore[union-attr]
        added = await agent.call_tool("c1", "toolbox__add", {"a": 2, "b": 3}, timeout=10)
        assert added.structured_content == {"result": 5}
        failed = await agent.call_tool("c1", "toolbox__fail", {"message": "boom"}, timeout=10)
        assert failed.is_error

        payload = bytes(range(256)) * 1200  # 300 KiB: two chunks
        uploaded = await agent.put_blob("c1", payload, name_hint="data.bin", chunk_size=200_000)
        assert Path(uploaded.landing_path).read_bytes() == payload
        assert uploaded.sha256 == hashlib.sha256(payload).hexdigest()


async def test_binary_sideband_restored_or_kept(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    url, _ = await start_stack(procs, tmp_path)
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1", cache=False) as agent:
        result = await agent.call_tool("c1", "toolbox__image", {"n_bytes": 100_000}, timeout=20)
        item = result.content[0]
        assert item.type == "image" and len(base64.b64decode(item.data)) == 100_000  # type: ignore[union-attr]
        assert not (item.meta or {}).get("a2c_blob_handle")

        kept = await agent.call_tool(
            "c1", "toolbox__image", {"n_bytes": 100_000}, timeout=20, keep_blob_handles=True
        )
        handle = (kept.content[0].meta or {})["a2c_blob_handle"]
        assert kept.content[0].data == ""  # type: ignore[union-attr]
        chunks: list[tuple[int, int]] = []
        blob = await agent.download_blob(
            "c1", handle, progress=lambda done, total: chunks.append((done, total))
        )
        assert blob.data == base64.b64decode(item.data)  # type: ignore[union-attr]
        assert chunks[-1] == (100_000, 100_000)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda a: a.get_tools("nobody"), NotFoundError),
        (lambda a: a.call_tool("nobody", "toolbox__echo", {"text": "x"}, timeout=5), NotFoundError),
        (lambda a: a.get_skill("c1", "Bad Name"), SkillNameInvalidError),
        (lambda a: a.get_blob("c1", "!!"), BlobNotAccessibleError),
        (lambda a: a.get_resources("c1", "nope"), SMCPError),
    ],
    ids=["get_tools-404", "call_tool-404", "get_skill-4016", "get_blob-4018", "get_resources-4014"],
)
async def test_error_payloads_become_typed_errors(
    procs: ProcessManager, official_py: str, tmp_path: Path, call: Any, error: type[Exception]
) -> None:
    url, _ = await start_stack(procs, tmp_path)
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1", cache=False) as agent:
        with pytest.raises(error) as info:
            await call(agent)
        assert "details" not in str(info.value)


async def test_timeout_sends_cancel_and_explicit_cancel(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    url, _ = await start_stack(procs, tmp_path)
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1", cache=False, tool_call_grace=1) as agent:
        start = time.monotonic()
        timed_out = await agent.call_tool("c1", "toolbox__slow_echo", {"text": "x", "seconds": 30}, timeout=1)
        assert timed_out.is_error and (timed_out.meta or {}).get("a2c_timeout") is True
        assert time.monotonic() - start < 10

        task = asyncio.create_task(
            agent.call_tool(
                "c1", "toolbox__slow_echo", {"text": "x", "seconds": 30}, timeout=20, req_id="r-cancel"
            )
        )
        await asyncio.sleep(1.0)
        await agent.cancel("r-cancel")
        cancelled = await asyncio.wait_for(task, 15)
        assert cancelled.is_error and (cancelled.meta or {}).get("a2c_cancelled") is True


async def test_version_mismatch_raises_and_does_not_retry(procs: ProcessManager, official_py: str) -> None:
    server = await start_official_server(procs)
    for transports in (("websocket",), ("polling", "websocket")):
        agent = AsyncAgent(f"http://127.0.0.1:{server.port}", token=TOKEN, transports=transports)
        agent._protocol_version = "0.3.9"
        with pytest.raises(ProtocolVersionError) as info:
            await agent.connect()
        err = info.value
        assert (err.server_version, err.client_version, err.min_supported, err.max_supported) == (
            "0.4.0",
            "0.3.9",
            "0.4.0",
            "0.4.999",
        )
        assert not agent.connected


async def test_cache_refreshes_on_tool_list_change(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    url, _ = await start_stack(procs, tmp_path)
    seen: list[str] = []
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1") as agent:
        agent.on("update_tool_list")(lambda note: seen.append(note.computer))
        await agent.cache.wait_idle(30)
        view = agent.cache.get("c1")
        assert view is not None and view.tools is not None
        assert "toolbox__extra" not in {t.name for t in view.tools}
        await agent.call_tool("c1", "toolbox__grow", {}, timeout=10)
        deadline = time.monotonic() + 20
        while "toolbox__extra" not in {t.name for t in view.tools or ()}:
            assert time.monotonic() < deadline, "the cache never saw the new tool"
            await asyncio.sleep(0.1)
        assert seen and seen[0] == "c1"


async def test_reconnect_after_server_restart(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    server = await start_official_server(procs)
    port = server.port
    url = f"http://127.0.0.1:{port}"
    events: list[str] = []
    async with AsyncAgent(url, token=TOKEN, office="o1", name="a1") as agent:
        agent.on("reconnected")(lambda: events.append("reconnected"))
        agent.on("disconnected")(lambda: events.append("disconnected"))
        # a request in flight when the server dies fails at once, not after its timeout
        pending = asyncio.create_task(agent.get_tools("c-never"))
        await asyncio.sleep(0.2)
        start = time.monotonic()
        server.stop()
        with pytest.raises((ConnectionLostError, NotFoundError)):
            await asyncio.wait_for(pending, 10)
        assert time.monotonic() - start < 8
        from smcp.testing.official import official_python, peer_env
        from smcp.testing.peers import peer_script

        await procs.astart(
            "official-server-2",
            [official_python(), peer_script("official_server"), "--host", "127.0.0.1", "--port", str(port),
             "--token", TOKEN],
            env=peer_env(procs, "official-server-2"),
            timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while "reconnected" not in events:
            assert time.monotonic() < deadline, "the Agent did not re-join after the restart"
            await asyncio.sleep(0.1)
        assert agent.office == "o1"
        names = [s.name for s in await agent.sessions()]
        assert names == ["a1"]
        assert "disconnected" in events


def test_sync_agent_in_plain_thread(procs: ProcessManager, official_py: str, tmp_path: Path) -> None:
    url, _ = asyncio.run(start_stack(procs, tmp_path))
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            with Agent(url, token=TOKEN, office="o1", name="sync-agent") as agent:
                agent.wait_cache_idle(30)
                outcome["cached"] = [t.name for _, t in agent.cache.tools("c1")]
                outcome["computers"] = [c.name for c in agent.computers()]
                outcome["tools"] = [t.name for t in agent.get_tools("c1")]
                outcome["echo"] = agent.call_tool("c1", "toolbox__echo", {"text": "sync"}, timeout=10)
                outcome["resources"] = [r.uri for r in agent.iter_resources("c1", "toolbox")]
                outcome["skill"] = agent.get_skill("c1", "demo-skill").text
                try:
                    agent.get_tools("nobody")
                except NotFoundError as exc:
                    outcome["error"] = exc
        except BaseException as exc:
            outcome["crash"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    assert "crash" not in outcome, outcome.get("crash")
    assert "toolbox__echo" in outcome["cached"] and outcome["computers"] == ["c1"]
    assert "toolbox__echo" in outcome["tools"]
    assert outcome["echo"].content[0].text == "sync"
    assert len(outcome["resources"]) == 32
    assert outcome["skill"].startswith("# Demo")
    assert isinstance(outcome["error"], NotFoundError)


async def test_polling_first_and_second_agent_refused(
    procs: ProcessManager, official_py: str, tmp_path: Path
) -> None:
    url, _ = await start_stack(procs, tmp_path)
    async with AsyncAgent(
        url, token=TOKEN, office="o1", name="a1", transports=("polling", "websocket")
    ) as agent:
        echo = await agent.call_tool("c1", "toolbox__echo", {"text": "polled"}, timeout=10)
        assert echo.content[0].text == "polled"  # type: ignore[union-attr]
        second = AsyncAgent(url, token=TOKEN, office="o1", name="a2", cache=False)
        with pytest.raises(JoinRefusedError) as info:
            await second.__aenter__()
        assert "Agent already in room" in info.value.reason
        assert not second.connected
        start = time.monotonic()
    assert time.monotonic() - start < 5  # leaving and closing an upgraded connection is quick
