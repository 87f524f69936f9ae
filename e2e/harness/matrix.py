"""Role adapters for the cross-implementation matrix: ours or official, behind one interface.

- :class:`Combo`: one cell, ``Server x Agent x Computer``, each ``"ours"`` or ``"official"``;
  :data:`COMBOS` lists all eight (id ``srv-ours/agent-official/comp-ours``).
- :func:`start_server` -> :class:`ServerUnderTest` (``url``, ``token``, ``kind``);
- :func:`start_computer` -> :class:`ComputerUnderTest` (``name``, ``office``, ``kill()``);
- :class:`AgentUnderTest`: the JSON-lines agent driver (``official_peers/official_agent.py`` or
  ``our_peers/our_agent.py``); both speak the same commands and answer in the same shapes, so a
  scenario is written once.

Our console scripts (``smcp-server``, ``smcp-computer``) are looked up next to the test
interpreter; a role whose package is not there yet raises :class:`RoleUnavailable`, which the
tests turn into an expected failure naming the issue.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .official import DEFAULT_TOKEN, OfficialAgent, _peer_env, peer_script, start_official_computer
from .official import start_official_server as _start_official_server
from .official_env import official_python
from .processes import ManagedProcess, ProcessManager

Kind = Literal["ours", "official"]
KINDS: tuple[Kind, Kind] = ("ours", "official")

OUR_PEERS_DIR = Path(__file__).resolve().parent / "our_peers"
BIN_DIR = Path(sys.executable).parent

#: Issues whose work the matrix waits for; named in the xfail reasons.
ISSUE_SERVER = "issue 'smcp-server: the Server role' (packages/smcp-server-core, smcp-server-asgi)"
ISSUE_COMPUTER = "issue 'smcp-computer: the Computer role' (packages/smcp-computer)"


class RoleUnavailable(RuntimeError):
    """Our implementation of a role is not installed (yet) in this environment."""


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


# -- availability -----------------------------------------------------------------------------


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def our_server_available() -> bool:
    return _module_exists("smcp.server.asgi.cli") and _module_exists("smcp.server.core")


def our_computer_available() -> bool:
    return _module_exists("smcp.computer.cli")


def our_agent_available() -> bool:
    return _module_exists("smcp.agent._client")


def missing_roles(combo: Combo) -> list[str]:
    """The issues that must land before ``combo`` can run (empty when it can)."""
    missing = []
    if combo.server == "ours" and not our_server_available():
        missing.append(ISSUE_SERVER)
    if combo.computer == "ours" and not our_computer_available():
        missing.append(ISSUE_COMPUTER)
    if combo.agent == "ours" and not our_agent_available():
        missing.append("issue 'smcp-agent: the Agent role' (packages/smcp-agent)")
    return missing


_computer_flags: set[str] | None = None


def our_computer_flags() -> set[str]:
    """The options ``smcp-computer run --help`` lists (empty when it cannot be asked)."""
    global _computer_flags  # noqa: PLW0603
    if _computer_flags is None:
        import re
        import subprocess

        try:
            out = subprocess.run(
                [*_our_command("smcp-computer", "smcp.computer.cli"), "run", "--help"],
                capture_output=True, text=True, timeout=30, env=our_env({"COLUMNS": "200"}),
            )  # fmt: skip
            _computer_flags = set(re.findall(r"--[a-z][a-z0-9-]*", out.stdout + out.stderr))
        except (OSError, subprocess.TimeoutExpired):
            _computer_flags = set()
    return _computer_flags


def _our_command(script: str, module: str) -> list[str]:
    exe = BIN_DIR / script
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", module]


def our_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for our processes: the current one, unbuffered, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("SMCP_E2E_OFFICIAL_PYTHON", None)
    env.update(extra or {})
    return env


# -- servers ----------------------------------------------------------------------------------


@dataclass
class ServerUnderTest:
    kind: Kind
    proc: ManagedProcess
    token: str
    path: str = ""  # the sub-path the app is mounted at ("" = at the root)

    @property
    def url(self) -> str:
        """What clients connect to (Socket.IO clients take the path separately)."""
        return f"http://127.0.0.1:{self.proc.port}"

    @property
    def socketio_path(self) -> str:
        """The Engine.IO path clients must use (``socket.io``, or ``<mount>/socket.io``)."""
        return f"{self.path.strip('/')}/socket.io" if self.path.strip("/") else "socket.io"

    @property
    def socketio_url(self) -> str:
        """The Engine.IO endpoint (for raw HTTP checks of the version gate)."""
        return f"{self.url}/{self.socketio_path}/"


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
        return ServerUnderTest(kind, proc, token)
    if not our_server_available():
        raise RoleUnavailable(ISSUE_SERVER)
    argv = [
        *_our_command("smcp-server", "smcp.server.asgi.cli"),
        "--host", "127.0.0.1", "--port", "0", "--token", token, *(extra_args or []),
    ]  # fmt: skip
    proc = await procs.astart(name or "our-server", argv, env=our_env(), timeout=timeout)
    return ServerUnderTest(kind, proc, token)


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
    if not our_server_available():
        raise RoleUnavailable(ISSUE_SERVER)
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
    return ServerUnderTest("ours", proc, token, path)


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
    from . import toolbox_path
    from .official import stdio_server_entry

    return {
        "toolbox": stdio_server_entry(
            sys.executable,
            [str(toolbox_path()), "stdio"],
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
    if not our_computer_available():
        raise RoleUnavailable(ISSUE_COMPUTER)
    argv: list[str | Path] = [
        *_our_command("smcp-computer", "smcp.computer.cli"), "run",
        "--url", url, "--token", token, "--office", office, "--name", name,
        "--config", config, "--no-repl", "--auto-apply",
    ]  # fmt: skip
    flags = our_computer_flags()  # pass the optional settings only where the CLI has them
    if landing_root is not None and "--landing-root" in flags:
        landing_root.mkdir(parents=True, exist_ok=True)
        argv += ["--landing-root", landing_root]
    if skill_home is not None and "--skill-home" in flags:
        argv += ["--skill-home", skill_home]
    if socketio_path != "socket.io":
        if "--socketio-path" not in flags:
            raise RoleUnavailable(f"{ISSUE_COMPUTER}: `smcp-computer run` has no --socketio-path option")
        argv += ["--socketio-path", socketio_path]
    argv += extra_args or []
    label = proc_name or f"our-computer-{name}"
    home = procs.log_dir / f"home-{label}"
    (home / "cwd").mkdir(parents=True, exist_ok=True)
    extra = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local"),
    }
    proc = await procs.astart(
        label,
        argv,
        ready=r"^(READY|FAILED.*)",
        env=our_env({**env, **extra}),
        cwd=home / "cwd",
        timeout=timeout,
    )
    if proc.ready_match is not None and proc.ready_match.group(1) != "READY":
        raise RuntimeError(f"{label} did not start: {proc.ready_match.group(1)}\n{proc.log_text()[-4000:]}")
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
            env = _peer_env(procs, label, None)
        else:
            if not our_agent_available():
                raise RoleUnavailable("issue 'smcp-agent: the Agent role' (packages/smcp-agent)")
            python = sys.executable
            script = OUR_PEERS_DIR / "our_agent.py"
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
    "ISSUE_COMPUTER",
    "ISSUE_SERVER",
    "KINDS",
    "AgentUnderTest",
    "Combo",
    "ComputerUnderTest",
    "Kind",
    "RoleUnavailable",
    "ServerUnderTest",
    "matrix_servers",
    "missing_roles",
    "our_computer_available",
    "our_computer_flags",
    "our_server_available",
    "start_computer",
    "start_hosted_server",
    "start_server",
]
