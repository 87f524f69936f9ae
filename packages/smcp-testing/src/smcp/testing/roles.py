"""Our roles as subprocesses (the ``smcp-server`` and ``smcp-computer`` commands of this
interpreter) and our Agent in-process, for tests of a whole deployment.

Each ``start_*`` returns once the process printed its readiness line (``LISTENING <port>`` /
``READY``); a process that prints ``FAILED ...`` or exits first raises with its log tail. The
commands need ``smcp-testing[server-asgi]`` / ``smcp-testing[computer]``; :func:`agent` needs
``smcp-testing[agent]``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .processes import ManagedProcess, ProcessManager, ProcessStartError

if TYPE_CHECKING:
    from smcp.agent import AsyncAgent

DEFAULT_TOKEN = "e2e-secret"
BIN_DIR = Path(sys.executable).parent


def our_command(script: str, module: str) -> list[str]:
    """The console script ``script`` next to this interpreter, else ``python -m module``."""
    exe = BIN_DIR / script
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


def our_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for our processes: the current one, unbuffered, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("SMCP_E2E_OFFICIAL_PYTHON", None)
    env.update(extra or {})
    return env


@dataclass
class ServerProcess:
    """A server in a subprocess; ``path`` is the sub-path its app is mounted at ("" = the root)."""

    proc: ManagedProcess
    token: str
    path: str = ""

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


@dataclass
class ComputerProcess:
    """A headless Computer in a subprocess, joined to ``office`` as ``name``."""

    proc: ManagedProcess
    name: str
    office: str

    def kill(self) -> None:
        """SIGKILL the Computer and its MCP servers (a crash, not a goodbye)."""
        self.proc.signal_group(signal.SIGKILL)


async def start_server(
    procs: ProcessManager,
    *,
    token: str = DEFAULT_TOKEN,
    name: str = "our-server",
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ServerProcess:
    """``smcp-server`` on 127.0.0.1, port 0 (``extra_args`` are appended to its command line)."""
    argv = [
        *our_command("smcp-server", "smcp.server.asgi.cli"),
        "--host", "127.0.0.1", "--port", "0", "--token", token, *extra_args,
    ]  # fmt: skip
    proc = await procs.astart(name, argv, env=our_env(env), timeout=timeout)
    return ServerProcess(proc, token)


async def start_computer(
    procs: ProcessManager,
    *,
    url: str,
    office: str,
    name: str,
    config: Path,
    token: str = DEFAULT_TOKEN,
    landing_root: Path | None = None,
    skill_home: Path | None = None,
    socketio_path: str = "socket.io",
    extra_args: Sequence[str | Path] = (),
    env: Mapping[str, str] | None = None,
    proc_name: str | None = None,
    timeout: float = 90.0,
) -> ComputerProcess:
    """``smcp-computer run`` hosting ``config`` (an ``mcp.json``, see :mod:`smcp.testing.mcp_config`),
    joined to ``office`` with tools auto-applied. HOME and the XDG folders point into the log
    folder, so the Computer never reads or writes the real home."""
    argv: list[str | Path] = [
        *our_command("smcp-computer", "smcp.computer.cli"), "run",
        "--url", url, "--token", token, "--office", office, "--name", name,
        "--config", config, "--no-repl", "--auto-apply",
    ]  # fmt: skip
    if landing_root is not None:
        landing_root.mkdir(parents=True, exist_ok=True)
        argv += ["--landing-root", landing_root]
    if skill_home is not None:
        argv += ["--skill-home", skill_home]
    if socketio_path != "socket.io":
        argv += ["--socketio-path", socketio_path]
    argv += list(extra_args)
    label = proc_name or f"our-computer-{name}"
    home = procs.log_dir / f"home-{label}"
    (home / "cwd").mkdir(parents=True, exist_ok=True)
    extra = {
        **(env or {}),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local"),
    }
    proc = await procs.astart(
        label, argv, ready=r"^(READY|FAILED.*)", env=our_env(extra), cwd=home / "cwd", timeout=timeout
    )
    if proc.ready_match is not None and proc.ready_match.group(1) != "READY":
        raise ProcessStartError(
            f"{label} did not start: {proc.ready_match.group(1)}\n{proc.log_text()[-4000:]}"
        )
    return ComputerProcess(proc, name, office)


@asynccontextmanager
async def agent(
    url: str, *, office: str, token: str = DEFAULT_TOKEN, name: str = "test-agent", **options: Any
) -> AsyncIterator[AsyncAgent]:
    """Our ``AsyncAgent``, connected and joined to ``office`` (``options``: its other keywords);
    it leaves and disconnects on exit."""
    from smcp.agent import AsyncAgent

    async with AsyncAgent(url, token=token, office=office, name=name, **options) as connected:
        yield connected


__all__ = [
    "DEFAULT_TOKEN",
    "ComputerProcess",
    "ServerProcess",
    "agent",
    "our_command",
    "our_env",
    "start_computer",
    "start_server",
]
