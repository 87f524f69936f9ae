"""Role adapters for the cross-implementation matrix: ours or official, behind one interface.

- :class:`Combo`: one cell, ``Server x Agent x Computer``, each ``"ours"`` or ``"official"``;
  :data:`COMBOS` lists all eight (id ``srv-ours/agent-official/comp-ours``).
- :func:`start_server` -> :class:`ServerUnderTest` (``url``, ``token``, ``kind``);
- :func:`start_computer` -> :class:`ComputerUnderTest` (``name``, ``office``, ``kill()``);
- :class:`AgentUnderTest`: the JSON-lines agent driver (``official_agent.py`` or ``our_agent.py``
  of :mod:`smcp.testing.peers`); both speak the same commands and answer in the same shapes, so a
  scenario is written once.

Our roles start through :mod:`smcp.testing.roles` (the console scripts next to the test
interpreter); the official ones through :mod:`smcp.testing.official`.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from smcp.testing import roles
from smcp.testing.mcp_config import toolbox_entry
from smcp.testing.official import DEFAULT_TOKEN, OfficialAgent, peer_env, start_official_computer
from smcp.testing.official import start_official_server as _start_official_server
from smcp.testing.official_env import official_python
from smcp.testing.peers import peer_script
from smcp.testing.processes import ManagedProcess, ProcessManager

Kind = Literal["ours", "official"]
KINDS: tuple[Kind, Kind] = ("ours", "official")

OUR_PEERS_DIR = Path(__file__).resolve().parent / "our_peers"


@dataclass(frozen=True)
class Combo:
    """One cell of the matrix."""

    server: Kind
    agent: Kind
    computer: Kind

    @property
    def id(self) -> str:
        return f"srv-{self.server}/agent-{self.agent}/comp-{self.computer}"

    @property
    def all_official(self) -> bool:
        return self.server == self.agent == self.computer == "official"

    def __str__(self) -> str:
        return self.id


COMBOS: list[Combo] = [Combo(s, a, c) for s in KINDS for a in KINDS for c in KINDS]


our_env = roles.our_env  # the environment of our processes (the tests add to it)


# -- servers ----------------------------------------------------------------------------------


@dataclass
class ServerUnderTest(roles.ServerProcess):
    """A server of either kind (ours or the official one) in a subprocess."""

    kind: Kind = field(default="ours", kw_only=True)


async def start_server(
    procs: ProcessManager,
    kind: Kind,
    *,
    token: str = DEFAULT_TOKEN,
    name: str | None = None,
    extra_args: list[str] | None = None,
    timeout: float = 60.0,
) -> ServerUnderTest:
    """Start a server of ``kind`` on 127.0.0.1, port 0; returns once it prints ``LISTENING``."""
    if kind == "official":
        proc = await _start_official_server(
            procs, token=token, name=name or "official-server", timeout=timeout
        )
        return ServerUnderTest(proc, token, kind=kind)
    ours = await roles.start_server(
        procs, token=token, name=name or "our-server", extra_args=extra_args or [], timeout=timeout
    )
    return ServerUnderTest(ours.proc, token, kind=kind)


async def start_hosted_server(
    procs: ProcessManager,
    hosting: str,
    *,
    token: str = DEFAULT_TOKEN,
    name: str | None = None,
    timeout: float = 60.0,
) -> ServerUnderTest:
    """Our server app under another host: ``uvicorn``, ``hypercorn`` or ``fastapi-mount`` (see
    ``our_peers/host_server.py``); ``socketio_path`` carries the mount path."""
    argv: list[str | Path] = [
        sys.executable, OUR_PEERS_DIR / "host_server.py", "--hosting", hosting, "--token", token,
    ]  # fmt: skip
    proc = await procs.astart(
        name or f"our-server-{hosting}",
        argv,
        ready=r"LISTENING (\d+)(?: PATH (\S*))?",
        env=our_env(),
        timeout=timeout,
    )
    path = ""
    if proc.ready_match is not None and proc.ready_match.group(2):
        path = proc.ready_match.group(2).rstrip("/")
    return ServerUnderTest(proc, token, path)


# -- computers --------------------------------------------------------------------------------


@dataclass
class ComputerUnderTest:
    kind: Kind
    proc: ManagedProcess
    name: str
    office: str

    def kill(self) -> None:
        """SIGKILL the Computer and its MCP servers (a crash, not a goodbye)."""
        self.proc.signal_group(signal.SIGKILL)


def matrix_servers(*, tag: str = "matrix") -> dict[str, dict[str, Any]]:
    """The MCP servers every Computer of the matrix hosts: ``toolbox.py`` over stdio with an alias
    (``add`` -> ``plus``) and a forbidden tool (``crash``)."""
    return {
        "toolbox": toolbox_entry(
            env={"SMCP_TOOLBOX_TAG": tag},
            tool_meta={"add": {"alias": "plus"}},
            # explicit, so both Computers see the same declaration (the official peer's
            # --auto-apply would otherwise write it in and ours would not)
            default_tool_meta={"auto_apply": True},
            forbidden_tools=["crash"],
        )
    }


async def start_computer(
    procs: ProcessManager,
    kind: Kind,
    *,
    url: str,
    office: str,
    name: str,
    config: Path,
    token: str = DEFAULT_TOKEN,
    landing_root: Path | None = None,
    skill_home: Path | None = None,
    proc_name: str | None = None,
    socketio_path: str = "socket.io",
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    timeout: float = 90.0,
) -> ComputerUnderTest:
    """Start a headless Computer of ``kind`` that hosts ``config`` (an official-shaped mcp.json),
    connects, joins ``office`` and prints ``READY``. ``env`` adds environment variables (e.g. the
    ``A2C_SMCP_<input id>`` values of the config's inputs); ``extra_args`` are appended to our
    ``smcp-computer run`` (e.g. ``--log-level INFO``; not accepted for the official Computer)."""
    env = {**(env or {}), **({"A2C_SKILL_HOME": str(skill_home)} if skill_home is not None else {})}
    if kind == "official":
        if extra_args:
            raise ValueError("extra_args apply to our Computer only")
        proc = await start_official_computer(
            procs, url=url, office=office, name=name, config=config, token=token,
            landing_root=landing_root, env=env, socketio_path=socketio_path, timeout=timeout,
        )  # fmt: skip
        return ComputerUnderTest(kind, proc, name, office)
    ours = await roles.start_computer(
        procs, url=url, office=office, name=name, config=config, token=token, landing_root=landing_root,
        skill_home=skill_home, socketio_path=socketio_path, extra_args=extra_args or [], env=env,
        proc_name=proc_name, timeout=timeout,
    )  # fmt: skip
    proc = ours.proc
    return ComputerUnderTest(kind, proc, name, office)


# -- agents -----------------------------------------------------------------------------------


class AgentUnderTest(OfficialAgent):
    """A JSON-lines agent driver of either kind (same commands, same answer shapes)."""

    def __init__(self, proc: ManagedProcess, kind: Kind, name: str) -> None:
        super().__init__(proc)
        self.kind = kind
        self.name = name

    @classmethod
    async def launch(
        cls,
        procs: ProcessManager,
        kind: Kind,
        *,
        url: str,
        office: str,
        name: str,
        token: str = DEFAULT_TOKEN,
        socketio_path: str = "socket.io",
        timeout: float = 60.0,
    ) -> AgentUnderTest:
        label = f"{kind}-agent-{name}"
        if kind == "official":
            python: Path | str = official_python()
            script = peer_script("official_agent")
            env = peer_env(procs, label)
        else:
            python = sys.executable
            script = peer_script("our_agent")
            env = our_env()
        argv: list[str | Path] = [
            python, script, "--url", url, "--token", token, "--office", office, "--name", name,
            "--socketio-path", socketio_path,
        ]  # fmt: skip
        proc = await procs.astart(label, argv, ready=r"^READY$", env=env, stdin=True, timeout=timeout)
        return cls(proc, kind, name)

    def send_tool_call(self, computer: str, tool: str, params: dict[str, Any], timeout: int) -> int:
        """Start a ``tool_call`` whose *tool* timeout is ``timeout`` (``send``'s own ``timeout``
        keyword bounds the command); returns the command id for :meth:`wait`."""
        command_id = next(self._ids)
        args = {"computer": computer, "tool_name": tool, "params": params, "timeout": timeout}
        self.proc.write_line(
            json.dumps({"id": command_id, "cmd": "tool_call", "args": args, "timeout": timeout + 20})
        )
        return command_id

    async def tool_call(
        self, computer: str, tool: str, params: dict[str, Any] | None = None, timeout: int = 20
    ) -> dict[str, Any]:
        """Run a tool call; returns the raw answer (``{"result": <CallToolResult wire dict>}`` or
        ``{"error": {...}}``)."""
        command_id = self.send_tool_call(computer, tool, params or {}, timeout)
        return await self.wait(command_id, timeout + 30)


__all__ = [
    "COMBOS",
    "KINDS",
    "AgentUnderTest",
    "Combo",
    "ComputerUnderTest",
    "Kind",
    "ServerUnderTest",
    "matrix_servers",
    "start_computer",
    "start_hosted_server",
    "start_server",
]
