"""Our Computer (``smcp-computer run``) between the official a2c-smcp 0.4.2 Server and Agent.

What this file proves (the "Done when" of the Computer issue):

1. **An official ``mcp.json`` runs unchanged.** The file is written in the official shape
   (``{"servers": {...}, "inputs": [...]}``, docs/protocol.md §8.4; the map key is the server
   name, no ``name`` in the body) and is first accepted by the official SDK's own models (in its venv).
   It holds a stdio toolbox whose env carries ``${input:toolbox-tag}`` (a password input resolved
   from ``A2C_SMCP_toolbox_tag``, the official env naming: ``-`` becomes ``_``, case kept) and a
   streamable toolbox (``type: "streamable"``, ISO-8601 ``timeout``/``sse_read_timeout``) whose
   URL port is the ``promptString`` input ``remote-port`` resolved from its ``default``. Aliases
   (``add`` -> ``plus``, ``echo`` -> ``shout``) and ``forbidden_tools`` are set on both.
   The official Agent then checks, through the official Server:

   - ``get_tools``: both servers' tools, aliases in, forbidden and aliased-away names out;
   - ``get_config``: keyed by bundle_id, placeholders raw, the resolved secret nowhere;
   - ``tool_call``: aliased calls on both transports, ``whoami`` returns the input's value;
     forbidden, unknown and aliased-away names are ``isError`` results
     (``test_matrix.scenario_unknown_tool`` plus the streamable server's names);
   - timeout and cancel (``test_matrix.scenario_timeout`` / ``scenario_cancel``).

2. **Supervision.** The toolbox's ``crash`` tool (not forbidden in that Computer's config) kills
   the stdio MCP server; our Computer restarts it with backoff, the official Agent receives
   ``notify:update_tool_list`` and its automatic re-fetch lists the tools again; ``whoami`` (input
   rendered again at the restart) and ``echo`` work afterwards.

3. **mcp 1.x servers.** ``toolbox_v1.py`` (mcp 1.x FastMCP, run by the official venv python) over
   stdio and over streamable HTTP, hosted by our Computer; ``echo``/``add`` through the official Agent.

What the official Agent cannot express (so it is not asserted here):

- ``meta.a2c_timeout`` on a timeout. The 0.4.2 Agent's timeout branch is dead code (it catches
  the builtin ``TimeoutError``; python-socketio raises its own, docs/protocol.md, difference B8)
  and the 0.4.2 Server relays with exactly the call's ``timeout`` (B2), so our Computer's
  ``a2c_timeout`` result always arrives after both gave up: the Agent returns its generic "Tool
  call failed" text. Our Computer's ``a2c_timeout`` result is asserted where a peer lets it
  through: the matrix cells with our Agent (``test_matrix.py::test_matrix_timeout``) and
  ``packages/smcp-computer/tests/test_computer_hosting.py::test_timeout_and_cancel``.
- A cancel API: the 0.4.2 Agent has none, so the driver emits the raw ``server:tool_call_cancel``
  with the ``req_id`` the SDK generated.
- Forbidden vs unknown: both come back as the same ``isError`` result shape (the protocol has no
  separate error for a forbidden tool).

Processes: a module-scoped lab (one official Server, one streamable toolbox, one Computer of ours
hosting the official config, one official Agent) serves the read-only tests; the crash and mcp 1.x
tests start their own Computer and Agent in their own office on the same Server.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from .harness import ProcessManager, official_env, official_python, toolbox_path, write_mcp_json
from .harness.lab import Lab, open_lab, unique
from .harness.matrix import (
    AgentUnderTest,
    Combo,
    ServerUnderTest,
    our_env,
    start_computer,
    start_server,
)
from .test_matrix import (
    Stack,
    collect_notifications,
    meta_of,
    result_of,
    scenario_cancel,
    scenario_timeout,
    scenario_unknown_tool,
    text_of,
)

pytestmark = [pytest.mark.anyio, pytest.mark.official]

COMBO = Combo("official", "official", "ours")

SECRET = f"tag-secret-{os.getpid()}"  # the value of the password input; must never leave the Computer
TAG_INPUT = "toolbox-tag"
TAG_ENV = "A2C_SMCP_toolbox_tag"  # the official naming: A2C_SMCP_<id, [^A-Za-z0-9_] -> _>
PORT_INPUT = "remote-port"
REMOTE_TAG = "remote-side"  # $SMCP_TOOLBOX_TAG of the streamable toolbox (started by the test)

#: what each toolbox exposes under the official config (aliases applied, forbidden tools left out)
STDIO_TOOLS = {
    "toolbox__echo", "toolbox__slow_echo", "toolbox__fail", "toolbox__big_text", "toolbox__image",
    "toolbox__plus", "toolbox__grow", "toolbox__open_window", "toolbox__whoami", "toolbox__tagged",
}  # fmt: skip
REMOTE_TOOLS = {
    "remote__shout", "remote__slow_echo", "remote__big_text", "remote__image", "remote__add",
    "remote__grow", "remote__open_window", "remote__whoami", "remote__tagged",
}  # fmt: skip
GROWN = {"toolbox__extra", "remote__extra"}  # `grow` adds `extra`; other tests may have grown it


def official_config(path: Path, remote_port: int, *, stdio_forbidden: list[str]) -> Path:
    """The official-shaped mcp.json: every field the 0.4.2 models know, the map key as the name."""
    servers: dict[str, dict[str, Any]] = {
        "toolbox": {
            "type": "stdio",
            "disabled": False,
            "forbidden_tools": stdio_forbidden,
            "tool_meta": {"add": {"alias": "plus"}},
            "default_tool_meta": None,
            "vrl": None,
            "server_parameters": {
                "command": sys.executable,
                "args": [str(toolbox_path()), "stdio"],
                "env": {"SMCP_TOOLBOX_TAG": f"${{input:{TAG_INPUT}}}"},
                "cwd": None,
                "encoding": "utf-8",
                "encoding_error_handler": "strict",
            },
        },
        "remote": {
            "type": "streamable",
            "disabled": False,
            "forbidden_tools": ["crash", "fail"],
            "tool_meta": {"echo": {"alias": "shout"}},
            "default_tool_meta": None,
            "vrl": None,
            "server_parameters": {
                "url": f"http://127.0.0.1:${{input:{PORT_INPUT}}}/mcp",
                "headers": {"X-Toolbox-Tag": f"${{input:{TAG_INPUT}}}"},
                "timeout": "PT20S",
                "sse_read_timeout": "PT5M",
                "terminate_on_close": True,
            },
        },
    }
    inputs = [
        {"id": TAG_INPUT, "type": "promptString", "description": "toolbox tag (a secret)", "password": True},
        {"id": PORT_INPUT, "type": "promptString", "description": "port of the remote toolbox",
         "default": str(remote_port)},
    ]  # fmt: skip
    return write_mcp_json(path, servers, inputs)


OFFICIAL_CHECK = """
import json, sys
from pydantic import TypeAdapter
from a2c_smcp.computer.mcp_clients.model import MCPServerConfig, MCPServerInput
raw = json.loads(open(sys.argv[1], encoding="utf-8").read())
servers, inputs = TypeAdapter(MCPServerConfig), TypeAdapter(MCPServerInput)
kinds = {name: type(servers.validate_python({"name": name, **body})).__name__
         for name, body in raw["servers"].items()}
ids = [inputs.validate_python(item).id for item in raw["inputs"]]
print("OFFICIAL " + json.dumps({"servers": kinds, "inputs": ids}), flush=True)
"""


async def official_parse(config: Path, home: Path) -> dict[str, Any]:
    """Parse ``config`` with the official 0.4.2 models (in its venv); returns what they made of it."""
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [str(official_python()), "-c", OFFICIAL_CHECK, str(config)],
            env=official_env(home, None),
            check=False,
        )
    out = done.stdout.decode(errors="replace")
    lines = [line for line in out.splitlines() if line.startswith("OFFICIAL ")]
    assert done.returncode == 0 and lines, (
        f"the official models refused {config}:\n{out}\n{done.stderr.decode()}"
    )
    parsed: dict[str, Any] = json.loads(lines[-1].removeprefix("OFFICIAL "))
    return parsed


async def start_toolbox_http(procs: ProcessManager, name: str, *, v1: bool = False) -> int:
    """A toolbox over streamable HTTP on 127.0.0.1, port 0 (``/mcp``); returns its port."""
    if v1:
        argv: list[str | Path] = [official_python(), toolbox_path("toolbox_v1"), "http", "--port", "0"]
        env = official_env(procs.log_dir / f"home-{name}", None)
    else:
        argv = [sys.executable, toolbox_path(), "http", "--port", "0"]
        env = our_env({"SMCP_TOOLBOX_TAG": REMOTE_TAG})
    proc = await procs.astart(name, argv, env=env, timeout=60)
    assert proc.port is not None
    return proc.port


@dataclass
class OfficialStack(Stack):
    """A matrix :class:`Stack` whose Agent is the lab's one official Agent (one per office)."""

    the_agent: AgentUnderTest | None = None

    async def shared_agent(self) -> AgentUnderTest:
        assert self.the_agent is not None
        return self.the_agent


async def launch_agent(procs: ProcessManager, server: ServerUnderTest, office: str) -> AgentUnderTest:
    agent = await AgentUnderTest.launch(
        procs, "official", url=server.url, office=office, name=unique("agent")
    )
    assert (await agent.call("connect"))["connected"] is True
    assert (await agent.call("join"))["ack"] == [True, None]
    return agent


# -- the lab ------------------------------------------------------------------------------------


class ComputerLab(Lab):
    """The official Server, the streamable toolbox, our Computer on the official config and an
    official Agent, started on first use and shared by the tests of this module (per worker)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.remote_port: int | None = None
        self.stack: OfficialStack | None = None

    async def official_server(self) -> ServerUnderTest:
        return await self.kept("server", lambda: start_server(self.procs, "official", name="official-server"))

    async def remote(self) -> int:
        if self.remote_port is None:
            self.remote_port = await start_toolbox_http(self.procs, "remote-toolbox")
        return self.remote_port

    async def official_stack(self, procs: ProcessManager, tmp: Path) -> OfficialStack:
        if self.stack is None:
            server = await self.official_server()
            config = official_config(self.root / "mcp.json", await self.remote(), stdio_forbidden=["crash"])
            office, name = unique("office"), unique("comp")
            computer = await start_computer(
                self.procs, "ours", url=server.url, office=office, name=name, config=config,
                env={TAG_ENV: SECRET}, proc_name="our-computer",
            )  # fmt: skip
            agent = await launch_agent(self.procs, server, office)
            self.stack = OfficialStack(COMBO, self.procs, server, computer, office, tmp, the_agent=agent)
        self.procs.share_logs_with(procs)
        self.stack.procs, self.stack.tmp = procs, tmp
        return self.stack


@pytest.fixture(scope="module")
def lab() -> Iterator[ComputerLab]:
    with open_lab(ComputerLab, __file__, group="computer-official-lab") as current:
        yield current


@pytest.fixture
async def stack(
    lab: ComputerLab, procs: ProcessManager, tmp_path: Path, official_py: Path
) -> AsyncIterator[OfficialStack]:
    yield await lab.official_stack(procs, tmp_path)


# -- 1. the official config, end to end -----------------------------------------------------------


async def test_official_config_is_accepted_by_both(stack: OfficialStack, lab: ComputerLab) -> None:
    """The very file our Computer runs is valid for the official models, unchanged."""
    parsed = await official_parse(lab.root / "mcp.json", lab.root / "home-check")
    assert parsed["servers"] == {"toolbox": "StdioServerConfig", "remote": "StreamableHttpServerConfig"}
    assert parsed["inputs"] == [TAG_INPUT, PORT_INPUT]
    assert stack.comp.proc.alive()


async def test_get_tools(stack: OfficialStack) -> None:
    agent = await stack.shared_agent()
    tools = (await agent.call("get_tools", computer=stack.comp.name))["tools"]
    by_name = {t["name"]: t for t in tools}
    assert STDIO_TOOLS | REMOTE_TOOLS <= set(by_name) <= STDIO_TOOLS | REMOTE_TOOLS | GROWN
    # forbidden and aliased-away names are not listed
    for hidden in ("toolbox__crash", "toolbox__add", "remote__crash", "remote__fail", "remote__echo"):
        assert hidden not in by_name, hidden
    assert {t["bundle_id"] for t in tools} == {"toolbox", "remote"}
    plus = json.loads(by_name["toolbox__plus"]["meta"]["a2c_tool_meta"])
    assert plus["alias"] == "plus"
    shout = json.loads(by_name["remote__shout"]["meta"]["a2c_tool_meta"])
    assert shout["alias"] == "shout"
    assert by_name["remote__shout"]["params_schema"]["required"] == ["text"]


async def test_get_config(stack: OfficialStack) -> None:
    agent = await stack.shared_agent()
    config = await agent.call("get_config", computer=stack.comp.name)
    assert SECRET not in json.dumps(config)  # resolved secrets never leave the Computer
    assert set(config["servers"]) == {"toolbox", "remote"}  # keyed by bundle_id
    for key, server in config["servers"].items():
        assert server.get("bundle_id") in (None, key), server
    stdio, remote = config["servers"]["toolbox"], config["servers"]["remote"]
    assert stdio["type"] == "stdio"
    assert stdio["forbidden_tools"] == ["crash"]
    assert stdio["tool_meta"]["add"]["alias"] == "plus"
    assert stdio["server_parameters"]["env"] == {"SMCP_TOOLBOX_TAG": "${input:toolbox-tag}"}
    assert remote["type"] == "streamable"
    assert remote["forbidden_tools"] == ["crash", "fail"]
    assert remote["tool_meta"]["echo"]["alias"] == "shout"
    params = remote["server_parameters"]
    assert params["url"] == "http://127.0.0.1:${input:remote-port}/mcp"
    assert params["headers"] == {"X-Toolbox-Tag": "${input:toolbox-tag}"}
    assert (params["timeout"], params["sse_read_timeout"]) == ("PT20S", "PT5M")
    inputs = {item["id"]: item for item in config["inputs"]}
    assert set(inputs) == {TAG_INPUT, PORT_INPUT}
    assert inputs[TAG_INPUT]["type"] == "promptString" and inputs[TAG_INPUT]["password"] is True


async def test_tool_calls(stack: OfficialStack) -> None:
    agent = await stack.shared_agent()
    comp = stack.comp.name
    plus = result_of(await agent.tool_call(comp, "toolbox__plus", {"a": 2, "b": 40}))
    assert plus["isError"] is False and text_of(plus) == "42"
    assert meta_of(plus)["a2c_tool_meta"]["alias"] == "plus"
    shout = result_of(await agent.tool_call(comp, "remote__shout", {"text": "over http"}))
    assert shout["isError"] is False and text_of(shout) == "over http"
    assert meta_of(shout)["a2c_tool_meta"]["alias"] == "shout"
    remote_add = result_of(await agent.tool_call(comp, "remote__add", {"a": 5, "b": 6}))
    assert text_of(remote_add) == "11"
    # the input reached the stdio server's environment; the streamable one has its own
    assert text_of(result_of(await agent.tool_call(comp, "toolbox__whoami", {}))) == SECRET
    assert text_of(result_of(await agent.tool_call(comp, "remote__whoami", {}))) == REMOTE_TAG


async def test_forbidden_unknown_and_aliased_away(stack: OfficialStack) -> None:
    await scenario_unknown_tool(stack)  # toolbox__nope / toolbox__crash / toolbox__add
    agent = await stack.shared_agent()
    for name in ("remote__nope", "remote__crash", "remote__fail", "remote__echo"):
        result = result_of(await agent.tool_call(stack.comp.name, name, {}, 20))
        assert result["isError"] is True, (name, result)
        assert name in json.dumps(result["structuredContent"]), (name, result)
    assert stack.comp.proc.alive()


async def test_timeout(stack: OfficialStack) -> None:
    """The official Agent only shows its generic failure (see the module docstring)."""
    await scenario_timeout(stack)


async def test_cancel(stack: OfficialStack) -> None:
    await scenario_cancel(stack)


# -- 2. a crashed MCP server comes back by itself --------------------------------------------------


async def test_crashed_server_restarts_and_agent_sees_tools_again(
    lab: ComputerLab, procs: ProcessManager, tmp_path: Path, official_py: Path
) -> None:
    server = await lab.official_server()
    config = official_config(tmp_path / "mcp.json", await lab.remote(), stdio_forbidden=["fail"])
    lab.procs.share_logs_with(procs)
    office = unique("crash-office")
    computer = await start_computer(
        procs, "ours", url=server.url, office=office, name=unique("crash-comp"), config=config,
        env={TAG_ENV: SECRET}, extra_args=["--log-level", "INFO"],
    )  # fmt: skip
    agent = await launch_agent(procs, server, office)
    comp = computer.name
    tools = {t["name"] for t in (await agent.call("get_tools", computer=comp))["tools"]}
    assert "toolbox__crash" in tools and "toolbox__fail" not in tools
    await agent.call("notifications")  # start from a clean slate

    crashed = result_of(await agent.tool_call(comp, "toolbox__crash", {}, 20))
    assert crashed["isError"] is True, crashed  # the MCP server died mid-call
    crash_seen = time.monotonic()

    update = {"event": "notify:update_tool_list", "data": {"computer": comp}}

    def back(seen: list[dict[str, Any]]) -> bool:
        # one update when the tools went away, one when they came back; the Agent's own re-fetch
        # (the SDK does it on every update) lists the toolbox again
        return seen.count(update) >= 2 and any(
            n["event"] == "tools_received" and n["computer"] == comp and "toolbox__echo" in n["tools"]
            for n in seen
        )

    notes = await collect_notifications(agent, back, timeout=30)
    came_back = time.monotonic() - crash_seen
    refetched = next(n for n in notes if n["event"] == "tools_received" and "toolbox__echo" in n["tools"])
    listed = set(refetched["tools"])
    assert listed >= STDIO_TOOLS - {"toolbox__fail"} | {"toolbox__crash"} | REMOTE_TOOLS, refetched
    # our Computer's supervision restarted it after a backoff delay (first attempt)
    assert computer.proc.alive()
    await computer.proc.await_log(r"MCP server toolbox: restarting in \d+\.\d s \(attempt 1\)", timeout=10)
    assert came_back < 30, came_back

    echo = result_of(await agent.tool_call(comp, "toolbox__echo", {"text": "back"}))
    assert echo["isError"] is False and text_of(echo) == "back"
    # the input was rendered again for the new process
    assert text_of(result_of(await agent.tool_call(comp, "toolbox__whoami", {}))) == SECRET
    tools_now = {t["name"] for t in (await agent.call("get_tools", computer=comp))["tools"]}
    assert "toolbox__echo" in tools_now and "remote__shout" in tools_now
    await agent.quit()


# -- 3. mcp 1.x servers ----------------------------------------------------------------------------


async def test_mcp_v1_servers_over_stdio_and_streamable_http(
    lab: ComputerLab, procs: ProcessManager, tmp_path: Path, official_py: Path
) -> None:
    server = await lab.official_server()
    lab.procs.share_logs_with(procs)
    v1_port = await start_toolbox_http(procs, "toolbox-v1-http", v1=True)
    config = write_mcp_json(
        tmp_path / "mcp.json",
        {
            "v1stdio": {
                "type": "stdio",
                "disabled": False,
                "forbidden_tools": [],
                "tool_meta": {},
                "server_parameters": {
                    "command": str(official_py),
                    "args": [str(toolbox_path("toolbox_v1")), "stdio"],
                    "env": None,
                    "cwd": None,
                    "encoding": "utf-8",
                    "encoding_error_handler": "strict",
                },
            },
            "v1http": {
                "type": "streamable",
                "disabled": False,
                "forbidden_tools": [],
                "tool_meta": {},
                "server_parameters": {
                    "url": f"http://127.0.0.1:{v1_port}/mcp",
                    "headers": None,
                    "timeout": "PT20S",
                    "sse_read_timeout": "PT5M",
                    "terminate_on_close": True,
                },
            },
        },
    )
    office = unique("v1-office")
    computer = await start_computer(
        procs, "ours", url=server.url, office=office, name=unique("v1-comp"), config=config
    )
    agent = await launch_agent(procs, server, office)
    comp = computer.name
    tools = {t["name"]: t for t in (await agent.call("get_tools", computer=comp))["tools"]}
    for bundle in ("v1stdio", "v1http"):
        assert {f"{bundle}__echo", f"{bundle}__slow_echo", f"{bundle}__add"} <= set(tools), sorted(tools)
        assert tools[f"{bundle}__add"]["params_schema"]["required"] == ["a", "b"]
        echo = result_of(await agent.tool_call(comp, f"{bundle}__echo", {"text": f"hello {bundle}"}))
        assert echo["isError"] is False and text_of(echo) == f"hello {bundle}", echo
        add = result_of(await agent.tool_call(comp, f"{bundle}__add", {"a": 20, "b": 22}))
        assert add["isError"] is False and text_of(add) == "42", add
    await agent.quit()
