"""``smcp-agent mcp``: an office as a standard MCP server, driven by MCP clients not written here.

The clients are the ``mcp`` package's ``ClientSession`` (over stdio, spawning ``smcp-agent mcp``,
and over streamable HTTP with a bearer token) and the official TypeScript SDK (``e2e/node``, run
with Node when it is installed). Behind the bridge: our server with our Computer hosting the
toolbox MCP server; ``test_mcp_bridge_official.py`` puts the official 0.4.2 peers there.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from smcp.testing import roles

from .harness import repo_root, write_mcp_json
from .harness.lab import Lab, open_lab, unique
from .harness.matrix import matrix_servers

mcp = pytest.importorskip("mcp", reason="the MCP bridge tests need the mcp package (smcp-agent[mcp])")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("mcp-bridge")]

TOKEN = roles.DEFAULT_TOKEN
NODE_DIR = repo_root() / "e2e" / "node"
SKILL_MD = "---\nname: demo-skill\ndescription: A demo skill\n---\n# Demo\nUse it well.\n"


class BridgeLab(Lab):
    """One server and one Computer (office ``bridge``) shared by the module."""

    async def server(self) -> roles.ServerProcess:
        return await self.kept(
            ("server",),
            lambda: roles.start_server(
                self.procs, name="our-server", extra_args=["--max-agents-per-office", "8"]
            ),
        )

    async def computer(self, office: str = "bridge", name: str = "comp1") -> roles.ComputerProcess:
        async def start() -> roles.ComputerProcess:
            server = await self.server()
            servers = matrix_servers(tag=name)
            # whoami is not auto-applied: the bridge confirms it through elicitation
            servers["toolbox"]["tool_meta"]["whoami"] = {"auto_apply": False}
            config = write_mcp_json(self.root / f"mcp-{name}.json", servers)
            skill = self.root / f"skills-{name}" / "user" / "demo-skill"
            skill.mkdir(parents=True, exist_ok=True)
            (skill / "SKILL.md").write_text(SKILL_MD, encoding="utf-8")
            return await roles.start_computer(
                self.procs, url=server.url, office=office, name=name, config=config,
                landing_root=self.root / f"landing-{name}", skill_home=self.root / f"skills-{name}",
            )  # fmt: skip

        return await self.kept(("computer", office, name), start)


@pytest.fixture(scope="module")
def lab() -> Iterator[BridgeLab]:
    with open_lab(BridgeLab, __file__, group="mcp-bridge") as current:
        yield current


def bridge_argv(url: str, office: str, *extra: str, name: str | None = None) -> list[str]:
    return [
        *roles.our_command("smcp-agent", "smcp.agent.cli"),
        "--url", url, "--token", TOKEN, "--name", name or unique("bridge"), "mcp", "--office", office, *extra,
    ]  # fmt: skip


class Notes:
    """The notifications an MCP client received."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def __call__(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str):
            self.methods.append(method)

    async def wait(self, method: str, count: int, timeout: float = 20) -> None:
        with anyio.fail_after(timeout):
            while self.methods.count(method) < count:
                await anyio.sleep(0.05)


@contextlib.asynccontextmanager
async def stdio_session(
    url: str,
    office: str,
    *extra: str,
    notes: Notes | None = None,
    log: Path | None = None,
    name: str | None = None,
) -> AsyncIterator[ClientSession]:
    argv = bridge_argv(url, office, *extra, name=name)
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=roles.our_env())
    errlog = (log or Path("/dev/null")).open("a", encoding="utf-8")
    try:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, message_handler=notes) as session,
        ):
            with anyio.fail_after(30):
                await session.initialize()
            yield session
    finally:
        errlog.close()


def text_of(result: Any) -> str:
    return "\n".join(getattr(item, "text", "") for item in result.content)


async def tool_names(session: ClientSession) -> set[str]:
    with anyio.fail_after(20):
        return {tool.name for tool in (await session.list_tools()).tools}


async def wait_tools(session: ClientSession, predicate: Any, timeout: float = 20) -> set[str]:
    deadline = time.monotonic() + timeout
    while True:
        names = await tool_names(session)
        if predicate(names) or time.monotonic() > deadline:
            return names
        await anyio.sleep(0.2)


# -- stdio: tools and calls -------------------------------------------------------------------------


async def test_stdio_lists_and_calls_the_office_tools(lab: BridgeLab) -> None:
    server = await lab.server()
    await lab.computer()
    from smcp.testing.server import Peer

    log = lab.root / "bridge-stdio.log"
    name = unique("bridge")
    watcher = Peer(server.url)  # an office member sees the bridge's server:tool_call_cancel
    await watcher.connect(token=TOKEN)
    assert (await watcher.join("agent", unique("watcher"), "bridge"))[0] is True
    async with stdio_session(server.url, "bridge", "--call-timeout", "3", log=log, name=name) as session:
        assert session.protocol_version in ("2025-06-18", "2025-11-25")
        listed = {t.name: t for t in (await session.list_tools()).tools}
        assert {"comp1__toolbox__echo", "comp1__toolbox__plus", "comp1__toolbox__fail"} <= set(listed)
        assert not any("crash" in name for name in listed), "a forbidden tool is listed"
        echo = listed["comp1__toolbox__echo"]
        assert echo.input_schema["properties"]["text"]["type"] == "string"
        assert echo.description and "unchanged" in echo.description
        assert echo.meta is not None and echo.meta["smcp"]["computer"] == "comp1"

        with anyio.fail_after(20):
            ok = await session.call_tool("comp1__toolbox__echo", {"text": "hi there"})
        assert not ok.is_error and text_of(ok) == "hi there"

        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        with anyio.fail_after(20):
            plus = await session.call_tool(
                "comp1__toolbox__plus", {"a": 2, "b": 3}, progress_callback=on_progress
            )
        assert not plus.is_error and "5" in text_of(plus)
        # SMCP reports no progress of its own: the bridge sends 0 at the start and 1 at the end
        assert progress[:1] == [0.0] and set(progress) <= {0.0, 1.0}

        with anyio.fail_after(20):
            failed = await session.call_tool("comp1__toolbox__fail", {"message": "boom"})
        assert failed.is_error and "boom" in text_of(failed)

        with anyio.fail_after(20):
            unknown = await session.call_tool("comp1__toolbox__nope", {})
        assert unknown.is_error and "nope" in text_of(unknown)

        # the deadline of the bridge (--call-timeout 3) ends a 30 s call as a tool error
        started = time.monotonic()
        with anyio.fail_after(20):
            slow = await session.call_tool("comp1__toolbox__slow_echo", {"text": "z", "seconds": 30})
        assert slow.is_error and time.monotonic() - started < 15
        assert "timeout" in text_of(slow).lower() or "timed out" in text_of(slow).lower()

        # cancelling a call (notifications/cancelled) ends it on the Computer too; the session lives on
        started, seen = time.monotonic(), len(watcher.received)
        with anyio.move_on_after(1.0):
            await session.call_tool("comp1__toolbox__slow_echo", {"text": "c", "seconds": 2.5})
        assert time.monotonic() - started < 2.5
        cancel = await watcher.wait_for("notify:tool_call_cancel", timeout=15, start=seen)
        assert cancel["agent"] == name and cancel["req_id"]
        with anyio.fail_after(20):
            after = await session.call_tool("comp1__toolbox__echo", {"text": "still here"})
        assert text_of(after) == "still here"
    await watcher.close()


async def test_stdio_big_results_and_binary_content(lab: BridgeLab) -> None:
    server = await lab.server()
    await lab.computer()
    async with stdio_session(server.url, "bridge") as session:
        # a 2 MB image travels from the Computer as a blob (sideband) and reaches the MCP client as
        # binary content again
        size = 2 * 1024 * 1024
        with anyio.fail_after(60):
            image = await session.call_tool("comp1__toolbox__image", {"n_bytes": size})
        assert not image.is_error, text_of(image)
        item = image.content[0]
        assert item.type == "image"
        data = base64.b64decode(item.data)
        assert len(data) == size and data.startswith(b"\x89PNG")
        # 2.5 MB of text arrives inline: over 5 MB on the wire (content and structuredContent),
        # past aiohttp's 4 MiB WebSocket default that the Agent raises (AgentOptions.max_message_size)
        with anyio.fail_after(60):
            big = await session.call_tool("comp1__toolbox__big_text", {"n_bytes": 2_500_000})
        assert not big.is_error and len(text_of(big)) == 2_500_000


# -- stdio: changes ---------------------------------------------------------------------------------


async def test_stdio_list_changed_on_join_grow_and_leave(lab: BridgeLab, procs: Any) -> None:
    server = await lab.server()
    office = "bridge"  # comp1, the module's Computer, is the first one; "second" joins it
    await lab.computer()
    notes = Notes()
    async with stdio_session(server.url, office, notes=notes, log=lab.root / "bridge-changes.log") as session:
        names = await tool_names(session)
        assert "comp1__toolbox__echo" in names

        # a Computer joins: list_changed, and its tools appear
        config = write_mcp_json(procs.log_dir / "mcp-second.json", matrix_servers(tag="second"))
        second = await roles.start_computer(
            procs, url=server.url, office=office, name="second", config=config
        )
        await notes.wait("notifications/tools/list_changed", 1)
        names = await wait_tools(session, lambda n: "second__toolbox__echo" in n)
        assert "second__toolbox__echo" in names

        # grow adds a tool on the MCP server: update_tool_list reaches the client as list_changed
        before = notes.methods.count("notifications/tools/list_changed")
        with anyio.fail_after(20):
            grown = await session.call_tool("comp1__toolbox__grow", {})
        assert not grown.is_error
        await notes.wait("notifications/tools/list_changed", before + 1)
        names = await wait_tools(session, lambda n: "comp1__toolbox__extra" in n)
        assert "comp1__toolbox__extra" in names

        # a Computer leaves (crashes): list_changed, and a call to it names it
        before = notes.methods.count("notifications/tools/list_changed")
        left_at = time.monotonic()
        second.kill()
        await notes.wait("notifications/tools/list_changed", before + 1, timeout=40)
        print(f"leave noticed after {time.monotonic() - left_at:.1f} s")
        with anyio.fail_after(20):
            gone = await session.call_tool("second__toolbox__echo", {"text": "x"})
        assert gone.is_error and "second" in text_of(gone)
        assert "second__toolbox__echo" not in await tool_names(session)


async def test_stdio_confirmation_through_elicitation(lab: BridgeLab) -> None:
    server = await lab.server()
    await lab.computer()
    asked: list[str] = []
    answers = ["decline", "accept"]

    async def elicit(context: Any, params: Any) -> Any:
        asked.append(params.message)
        action = answers.pop(0)
        return mcp.types.ElicitResult(
            action=action, content={"confirm": True} if action == "accept" else None
        )

    argv = bridge_argv(server.url, "bridge")
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=roles.our_env())
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, elicitation_callback=elicit) as session,
    ):
        with anyio.fail_after(30):
            await session.initialize()
            declined = await session.call_tool("comp1__toolbox__whoami", {})
            accepted = await session.call_tool("comp1__toolbox__whoami", {})
            plain = await session.call_tool("comp1__toolbox__echo", {"text": "no question"})
    assert declined.is_error and "did not confirm" in text_of(declined)
    assert not accepted.is_error and text_of(accepted) == "comp1"
    assert text_of(plain) == "no question"  # auto-applied tools are not confirmed
    assert len(asked) == 2 and "toolbox__whoami" in asked[0] and "comp1" in asked[0]


# -- resources --------------------------------------------------------------------------------------


async def test_stdio_resources_list_and_read_windows(lab: BridgeLab) -> None:
    server = await lab.server()
    await lab.computer()
    async with stdio_session(server.url, "bridge") as session:
        with anyio.fail_after(30):
            listed = (await session.list_resources()).resources
        by_inner = {r.meta["smcp"]["uri"]: r for r in listed if r.meta and "uri" in r.meta["smcp"]}
        assert "window://toolbox/main" in by_inner
        assert any(uri.startswith("mem://toolbox/item/") for uri in by_inner)
        main = by_inner["window://toolbox/main"]
        assert str(main.uri).startswith("smcp://comp1/")
        with anyio.fail_after(20):
            read = await session.read_resource(str(main.uri))
        assert read.contents[0].text == "content of window://toolbox/main"

        # skills are resources too: SKILL.md through client:get_skill
        skill = next(r for r in listed if r.meta and r.meta["smcp"].get("skill") == "demo-skill")
        assert str(skill.uri) == "smcp://comp1/skill%3A%2F%2Fdemo-skill"
        with anyio.fail_after(20):
            body = await session.read_resource(str(skill.uri))
        assert body.contents[0].text.endswith("# Demo\nUse it well.\n")

        # a resource SMCP cannot read is an MCP error that says so
        mem = next(uri for uri in by_inner if uri.startswith("mem://"))
        with anyio.fail_after(20), pytest.raises(mcp.shared.exceptions.MCPError, match="listed only"):
            await session.read_resource(str(by_inner[mem].uri))


# -- streamable HTTP with a bearer token ------------------------------------------------------------


async def test_http_with_bearer_token(lab: BridgeLab, procs: Any) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    server = await lab.server()
    await lab.computer()
    bridge = await procs.astart(
        "bridge-http",
        bridge_argv(server.url, "bridge", "--http", "127.0.0.1:0", "--http-token", "mcp-secret"),
        ready=r"LISTENING (\d+)",
        env=roles.our_env(),
        timeout=60,
    )
    url = f"http://127.0.0.1:{bridge.port}/mcp"
    async with httpx.AsyncClient(timeout=10) as plain:
        refused = await plain.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.status_code == 401
        wrong = await plain.post(url, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401

    from smcp.testing.server import Peer

    def answer(event: str, data: Any) -> Any:  # a scripted Computer with one tool
        if event == "client:get_tools":
            fake = {"name": "tb__ping", "bundle_id": "tb", "description": "Ping", "return_schema": None}
            return {"tools": [{**fake, "params_schema": {"type": "object"}}], "req_id": data["req_id"]}
        if event == "client:get_config":
            return {"servers": {}, "inputs": []}
        return {"skills": [], "req_id": data["req_id"]}

    notes = Notes()
    client = httpx2.AsyncClient(headers={"Authorization": "Bearer mcp-secret"}, timeout=30)
    async with (
        client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write, message_handler=notes) as session,
    ):
        with anyio.fail_after(30):
            await session.initialize()
        assert "comp1__toolbox__echo" in await tool_names(session)
        with anyio.fail_after(20):
            ok = await session.call_tool("comp1__toolbox__echo", {"text": "over http"})
        assert text_of(ok) == "over http"

        # list_changed reaches HTTP sessions too: a Computer joins, then leaves
        peer = Peer(server.url)
        peer.serve_requests(answer)
        await peer.connect(token=TOKEN)
        assert (await peer.join("computer", "scripted", "bridge"))[0] is True
        await notes.wait("notifications/tools/list_changed", 1)
        assert "scripted__tb__ping" in await wait_tools(session, lambda n: "scripted__tb__ping" in n)
        await peer.close()
        await notes.wait("notifications/tools/list_changed", 2)
        assert "scripted__tb__ping" not in await wait_tools(session, lambda n: "scripted__tb__ping" not in n)


# -- the official TypeScript SDK as a client --------------------------------------------------------


@pytest.fixture(scope="module")
def node_client() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed; the TypeScript SDK client needs it")
    if not (NODE_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300, capture_output=True
        )
    return NODE_DIR / "client.mjs"


async def test_typescript_sdk_lists_and_calls(lab: BridgeLab, node_client: Path) -> None:
    server = await lab.server()
    await lab.computer()
    argv = bridge_argv(server.url, "bridge")
    spec = {
        "command": argv[0], "args": argv[1:], "env": roles.our_env(),
        "tool": "comp1__toolbox__echo", "arguments": {"text": "from typescript"},
    }  # fmt: skip
    done = await anyio.run_process(
        ["node", str(node_client), json.dumps(spec)], check=False, stderr=subprocess.PIPE
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    answer = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert "comp1__toolbox__echo" in answer["tools"]
    assert answer["result"]["content"][0]["text"] == "from typescript"
    assert answer["result"].get("isError") in (None, False)


def test_node_lock_file_is_committed() -> None:
    lock = json.loads((NODE_DIR / "package-lock.json").read_text(encoding="utf-8"))
    assert "node_modules/@modelcontextprotocol/sdk" in lock["packages"]
