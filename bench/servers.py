"""The servers under comparison and how to start them as separate processes.

Every server binds 127.0.0.1 port 0 and prints ``LISTENING <port>``; the ``ProcessManager`` of
``smcp.testing.processes`` runs each in its own process group with a log file and stops
it by PID. Names:

    ours          our app (create_app, as smcp-server builds it) on the default install's stack:
                  asyncio + h11 + websockets (sans-I/O)
    ours-std      the smcp-server command itself on uvicorn's auto stack (uvicorn[standard] here)
    official      a2c-smcp 0.4.2 in its own virtualenv (plain uvicorn: all that venv has)
    relay         bench/relay_server.py on ours' stack: the floor
    ours-plain    ours on asyncio + h11 + wsproto (the default install before websockets was a dependency)
    relay-plain   the relay on asyncio + h11 + wsproto (a bare python-socketio + uvicorn install)
    relay-std     the relay on uvicorn[standard]
    node-relay    bench/node_relay/server.js: the same relay on Node's socket.io 4.x, the reference server
    ours-granian  our app (create_app) hosted by Granian (Rust HTTP/WebSocket core), when installed
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from common import log

from smcp.testing.official_env import CACHE_ENV, official_python
from smcp.testing.peers import peer_script
from smcp.testing.processes import ManagedProcess, ProcessManager

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault(CACHE_ENV, str(ROOT / ".e2e-cache"))  # the e2e suite's official venv

SERVER_NAMES = (
    "ours",
    "official",
    "relay",
    "ours-std",
    "relay-std",
    "node-relay",
    "ours-granian",
    "ours-plain",
    "relay-plain",
)
NODE_RELAY = HERE / "node_relay"
READY = r"LISTENING (\d+)"


@functools.cache
def ours_available() -> bool:
    """Whether our server command is installed in this interpreter."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "smcp.server.asgi.cli", "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def node_relay_missing() -> str | None:
    """Why ``node-relay`` cannot run here (``None`` when it can); runs ``npm ci`` once if needed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        return "node is not on PATH (Node.js 18+ runs the reference socket.io relay)"
    if not (NODE_RELAY / "node_modules" / "socket.io").is_dir():
        if npm is None:
            return "npm is not on PATH and bench/node_relay/node_modules is missing"
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_RELAY,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            return f"npm ci in bench/node_relay failed: {done.stderr.strip()[-300:]}"
    return None


def granian_missing() -> str | None:
    """Why ``ours-granian`` cannot run here (``None`` when it can)."""
    try:
        import granian  # noqa: F401
    except ImportError:
        return "granian is not installed (pip install 'smcp-server-asgi[granian]')"
    return None


@dataclass
class ServerSpec:
    name: str
    argv: list[str]
    stack: str
    env: dict[str, str] = field(default_factory=dict)


def spec_for(name: str, token: str) -> ServerSpec:
    py = sys.executable
    if name in ("relay", "relay-std", "relay-plain"):
        stack = {"relay": "default", "relay-std": "standard", "relay-plain": "plain"}[name]
        argv = [py, str(HERE / "relay_server.py"), "--port", "0", "--token", token, "--stack", stack]
        return ServerSpec(name, argv, stack)
    if name in ("ours", "ours-plain"):
        stack = "plain" if name == "ours-plain" else "default"
        argv = [py, str(HERE / "ours_server.py"), "--port", "0", "--token", token, "--stack", stack]
        return ServerSpec(name, argv, stack)
    if name == "ours-std":
        argv = [py, "-m", "smcp.server.asgi.cli", "--host", "127.0.0.1", "--port", "0", "--token", token]
        return ServerSpec(
            name, argv, "auto (uvloop, httptools, websockets when uvicorn[standard] is installed)"
        )
    if name == "node-relay":
        node = shutil.which("node") or "node"
        argv = [node, str(NODE_RELAY / "server.js"), "--port", "0", "--token", token]
        return ServerSpec(name, argv, "node:http + ws (socket.io 4.x)")
    if name == "ours-granian":
        argv = [py, str(HERE / "ours_server.py"), "--port", "0", "--token", token, "--host-with", "granian"]
        return ServerSpec(name, argv, "granian (Rust core; uvloop when installed)")
    if name == "official":
        script = peer_script("official_server")
        home = Path(tempfile.gettempdir()) / "smcp-bench" / "official-home"
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("A2C_", "VIRTUAL_ENV", "PYTHON"))}
        env["HOME"] = str(home)
        return ServerSpec(
            name, [str(official_python()), str(script), "--port", "0", "--token", token], "plain", env
        )
    raise ValueError(f"unknown server {name!r}; choose from {', '.join(SERVER_NAMES)}")


class Servers:
    """Starts and stops server processes; one log file each under ``log_dir``."""

    def __init__(self, log_dir: Path, token: str) -> None:
        self.procs = ProcessManager(log_dir)
        self.token = token
        self._seq = 0

    def start(self, name: str, timeout: float = 60.0) -> tuple[ManagedProcess, str]:
        spec = spec_for(name, self.token)
        self._seq += 1
        proc = self.procs.start(
            f"{self._seq:03d}-{name}",
            spec.argv,
            ready=READY,
            timeout=timeout,
            env=spec.env or None,
            cwd=ROOT,
        )
        log(f"started {name} (stack {spec.stack}) pid={proc.pid} port={proc.port}")
        return proc, f"http://127.0.0.1:{proc.port}"

    def stop(self, proc: ManagedProcess) -> None:
        proc.stop(4.0)

    def stop_all(self) -> None:
        self.procs.stop_all(4.0)
