"""Starting the official peers (server, Computer, Agent) as managed subprocesses.

All helpers are async (they wait for readiness lines without blocking the event loop) and put
each peer's state (HOME, XDG folders) under ``<log_dir>/home-<name>``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from pathlib import Path
from typing import Any

import anyio

from .official_env import official_env, official_python
from .peers import peer_script
from .processes import ManagedProcess, ProcessManager, ProcessTimeout
from .roles import DEFAULT_TOKEN


def peer_env(procs: ProcessManager, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the official peer ``name``: its state under ``<log_dir>/home-<name>``."""
    return official_env(procs.log_dir / f"home-{name}", extra)


async def start_official_server(
    procs: ProcessManager, *, token: str = DEFAULT_TOKEN, name: str = "official-server", timeout: float = 60.0
) -> ManagedProcess:
    """Start the official server; ``proc.port`` is its port. URL: ``f"http://127.0.0.1:{proc.port}"``."""
    python = official_python()
    argv: list[str | Path] = [
        python,
        peer_script("official_server"),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--token",
        token,
    ]
    return await procs.astart(name, argv, env=peer_env(procs, name, None), timeout=timeout)


async def start_official_computer(
    procs: ProcessManager,
    *,
    url: str,
    office: str,
    name: str,
    config: Path,
    token: str = DEFAULT_TOKEN,
    auto_apply: bool = True,
    landing_root: Path | None = None,
    env: dict[str, str] | None = None,
    socketio_path: str = "socket.io",
    timeout: float = 90.0,
) -> ManagedProcess:
    """Start a headless official Computer and wait for ``READY`` (connected and joined)."""
    python = official_python()
    argv: list[str | Path] = [
        python, peer_script("official_computer"),
        "--url", url, "--token", token, "--office", office, "--name", name, "--config", config,
    ]  # fmt: skip
    if auto_apply:
        argv.append("--auto-apply")
    if landing_root is not None:
        argv += ["--landing-root", landing_root]
    if socketio_path != "socket.io":
        argv += ["--socketio-path", socketio_path]
    proc_name = f"official-computer-{name}"
    home = procs.log_dir / f"home-{proc_name}"
    work = home / "cwd"
    work.mkdir(parents=True, exist_ok=True)
    return await _start_checked(
        procs, proc_name, argv, env=peer_env(procs, proc_name, env), cwd=work, timeout=timeout
    )


async def _start_checked(
    procs: ProcessManager,
    name: str,
    argv: list[str | Path],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float,
) -> ManagedProcess:
    proc = await procs.astart(name, argv, ready=r"^(READY|FAILED.*)$", env=env, cwd=cwd, timeout=timeout)
    if proc.ready_match is not None and proc.ready_match.group(1) != "READY":
        raise RuntimeError(f"{name} did not start: {proc.ready_match.group(1)}\n{proc.log_text()[-4000:]}")
    return proc


class AgentCommandError(RuntimeError):
    """The official agent driver answered a command with ``{"error": ...}``."""

    def __init__(self, command: str, error: dict[str, Any]) -> None:
        self.command = command
        self.type = str(error.get("type", ""))
        self.message = str(error.get("message", ""))
        super().__init__(f"{command}: {self.type}: {self.message}")


class OfficialAgent:
    """Async handle on ``official_agent.py`` (an official ``AsyncSMCPAgentClient`` in a subprocess).

    Create it with :meth:`start`; every method sends one JSON command and awaits its answer::

        agent = await OfficialAgent.start(procs, url=url, office="o1", name="agent1")
        await agent.call("connect")
        assert (await agent.call("join"))["ack"] == [True, None]
        tools = await agent.call("get_tools", computer="c1")

    ``call`` returns the ``result`` object or raises :class:`AgentCommandError`; ``try_call`` returns
    the whole answer (``{"result": ...}`` or ``{"error": ...}``). ``send`` + ``wait`` run commands
    concurrently (e.g. a slow tool call and its cancel). Every wait is bounded by ``timeout``.
    """

    def __init__(self, proc: ManagedProcess) -> None:
        self.proc = proc
        self._ids = itertools.count(1)

    @classmethod
    async def start(
        cls,
        procs: ProcessManager,
        *,
        url: str,
        office: str,
        name: str,
        token: str = DEFAULT_TOKEN,
        timeout: float = 60.0,
    ) -> OfficialAgent:
        python = official_python()
        argv: list[str | Path] = [
            python, peer_script("official_agent"),
            "--url", url, "--token", token, "--office", office, "--name", name,
        ]  # fmt: skip
        proc_name = f"official-agent-{name}"
        proc = await procs.astart(
            proc_name,
            argv,
            ready=r"^READY$",
            env=peer_env(procs, proc_name, None),
            stdin=True,
            timeout=timeout,
        )
        return cls(proc)

    def send(self, cmd: str, timeout: float | None = None, **args: Any) -> int:
        """Send a command without waiting; returns its id (use :meth:`wait`)."""
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "cmd": cmd, "args": args}
        if timeout is not None:
            message["timeout"] = timeout
        self.proc.write_line(json.dumps(message))
        return command_id

    async def wait(self, command_id: int, timeout: float = 40.0) -> dict[str, Any]:
        """Await the answer line of ``command_id`` (``{"id", "result"}`` or ``{"id", "error"}``)."""
        deadline = time.monotonic() + timeout
        start = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProcessTimeout(f"official agent: no answer to command {command_id} in {timeout:.1f} s")
            index, _ = await self.proc.await_line(r'^\{"id": ' + str(command_id) + r"[,}]", left, start)
            line = self.proc.lines()[index]
            start = index + 1
            try:
                answer: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if answer.get("id") == command_id:
                return answer

    async def try_call(self, cmd: str, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """Run a command; return the raw answer dict without raising on ``error``."""
        command_id = self.send(cmd, timeout=timeout, **args)
        bound = (timeout if timeout is not None else _default_bound(cmd, args)) + 10.0
        return await self.wait(command_id, bound)

    async def call(self, cmd: str, timeout: float | None = None, **args: Any) -> Any:
        """Run a command and return its ``result``; raise :class:`AgentCommandError` on ``error``."""
        answer = await self.try_call(cmd, timeout=timeout, **args)
        if "error" in answer:
            raise AgentCommandError(cmd, answer["error"])
        return answer["result"]

    async def await_notifications(self, wanted: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Drain ``notifications`` until at least ``wanted`` entries arrived or ``timeout`` passed;
        returns what arrived (possibly fewer)."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(seen) < wanted and time.monotonic() < deadline:
            seen += await self.call("notifications")
            if len(seen) < wanted:
                await anyio.sleep(0.2)
        return seen

    async def quit(self, timeout: float = 15.0) -> None:
        """Ask the driver to disconnect and exit; wait (bounded) for the process to end."""
        if self.proc.alive():
            with contextlib.suppress(ProcessTimeout, OSError):
                await self.try_call("quit", timeout=timeout)
            with anyio.move_on_after(timeout):
                await self.proc.await_exit(timeout)


def _default_bound(cmd: str, args: dict[str, Any]) -> float:
    if cmd == "tool_call":
        return float(args.get("timeout", 20)) + 10.0
    return 30.0
