"""The servers under comparison and how to start them as separate processes.

Every server binds 127.0.0.1 port 0 and prints ``LISTENING <port>``; the ``ProcessManager`` of
``smcp.testing.processes`` runs each in its own process group with a log file and stops
it by PID. Names:

    ours          our app (create_app, as smcp-server builds it) on the plain stack: asyncio + h11 + wsproto
    ours-std      the smcp-server command itself on uvicorn's auto stack (uvicorn[standard] here)
    official      a2c-smcp 0.4.2 in its own virtualenv (plain uvicorn: all that venv has)
    relay         bench/relay_server.py, plain stack: the floor
    relay-std     the relay on uvicorn[standard]
"""

from __future__ import annotations

import functools
import os
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

SERVER_NAMES = ("ours", "official", "relay", "ours-std", "relay-std")
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


@dataclass
class ServerSpec:
    name: str
    argv: list[str]
    stack: str
    env: dict[str, str] = field(default_factory=dict)


def spec_for(name: str, token: str) -> ServerSpec:
    py = sys.executable
    if name in ("relay", "relay-std"):
        stack = "standard" if name == "relay-std" else "plain"
        argv = [py, str(HERE / "relay_server.py"), "--port", "0", "--token", token, "--stack", stack]
        return ServerSpec(name, argv, stack)
    if name == "ours":
        return ServerSpec(name, [py, str(HERE / "ours_server.py"), "--port", "0", "--token", token], "plain")
    if name == "ours-std":
        argv = [py, "-m", "smcp.server.asgi.cli", "--host", "127.0.0.1", "--port", "0", "--token", token]
        return ServerSpec(
            name, argv, "auto (uvloop, httptools, websockets when uvicorn[standard] is installed)"
        )
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
