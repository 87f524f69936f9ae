"""What the fault tests share: a server with a short heartbeat, Computers behind a proxy, bounded
polling and the figures of "callable again"."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from smcp.agent import AsyncAgent
from smcp.testing.mcp_config import toolbox_config
from smcp.testing.processes import ProcessManager
from smcp.testing.roles import ComputerProcess, ServerProcess, start_computer, start_server

#: The heartbeat of the servers these tests start: short, so a half-open session is found in
#: seconds (each requirement is stated relative to ping interval + ping timeout).
PING_INTERVAL = 3.0
PING_TIMEOUT = 3.0


async def fast_server(procs: ProcessManager, *extra: str, name: str = "server") -> ServerProcess:
    args = ["--ping-interval", str(PING_INTERVAL), "--ping-timeout", str(PING_TIMEOUT), *extra]
    return await start_server(procs, name=name, extra_args=args)


async def toolbox_computer(
    procs: ProcessManager, url: str, office: str, name: str = "lap", *extra: str
) -> ComputerProcess:
    config = toolbox_config(procs.log_dir / f"mcp-{name}.json")
    return await start_computer(
        procs, url=url, office=office, name=name, config=config, extra_args=list(extra)
    )


async def wait_until(
    check: Callable[[], Awaitable[bool] | bool], timeout: float, every: float = 0.1
) -> float:
    """Poll ``check`` until it is true; return the seconds it took (TimeoutError after ``timeout``)."""
    start = time.monotonic()
    async with asyncio.timeout(timeout):
        while True:
            value = check()
            if not isinstance(value, bool):
                value = await value
            if value:
                return time.monotonic() - start
            await asyncio.sleep(every)


async def echo_ok(agent: AsyncAgent, computer: str, text: str = "ping", timeout: float = 3.0) -> bool:
    """One ``echo`` call; True when the Computer answered it with ``text``."""
    try:
        result = await asyncio.wait_for(
            agent.call_tool(computer, "toolbox__echo", {"text": text}, timeout=timeout), timeout + 1.0
        )
    except Exception as exc:
        print(f"echo on {computer} failed: {type(exc).__name__}: {exc}")
        return False
    if result.is_error or not result.content:
        print(f"echo on {computer}: {text_of(result)[:200]}")
    return not result.is_error and bool(result.content) and getattr(result.content[0], "text", None) == text


async def until_callable(agent: AsyncAgent, computer: str, timeout: float) -> float:
    """Seconds until ``computer`` answers an ``echo`` call through ``agent``."""
    return await wait_until(lambda: echo_ok(agent, computer, timeout=1.0), timeout, every=0.2)


def office_name(tag: str) -> str:
    return f"rel-{tag}-{time.monotonic_ns() % 10**9}"


def text_of(result: Any) -> str:
    return " ".join(str(getattr(c, "text", "")) for c in result.content)


__all__ = [
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "echo_ok",
    "fast_server",
    "office_name",
    "text_of",
    "toolbox_computer",
    "until_callable",
    "wait_until",
]


def children_matching(pid: int, needle: str) -> list[int]:
    """Descendant pids of ``pid`` whose command line contains ``needle`` (Linux ``/proc``)."""
    from pathlib import Path

    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], {pid}
    while frontier:
        kids = {child for child, parent in parents.items() if parent in frontier}
        for child in kids:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                found.append(child)
        frontier = kids
    return found


async def toolbox_http(procs: ProcessManager, name: str = "toolbox-http") -> str:
    """The toolbox MCP server over streamable HTTP (one process many Computers share); its URL."""
    import sys

    from smcp.testing.mcp_servers import script_path

    proc = await procs.astart(name, [sys.executable, str(script_path("toolbox")), "http", "--port", "0"])
    return f"http://127.0.0.1:{proc.port}/mcp"


class Pair:
    """An in-process Computer (hosting the shared HTTP toolbox, its tool meta tagged with its
    name) and an Agent, in an office of their own."""

    def __init__(self, index: int, tag: str) -> None:
        self.office = f"{tag}-office-{index}"
        self.name = f"{tag}-comp-{index}"
        self.agent_name = f"{tag}-agent-{index}"
        self.computer: Any = None
        self.link: Any = None
        self.agent: AsyncAgent | None = None

    async def start(self, url: str, token: str, mcp_url: str, **agent_options: Any) -> None:
        from smcp.computer import Computer, ComputerLink
        from smcp.core.models import StreamableServerConfig, ToolMeta
        from smcp.core.models.config import StreamableHttpServerParameters

        config = StreamableServerConfig(
            name="toolbox",
            server_parameters=StreamableHttpServerParameters(url=mcp_url),
            default_tool_meta=ToolMeta(auto_apply=True, tags=[self.name]),
        )
        self.computer = Computer(self.name, [config])
        await self.computer.start()
        self.link = ComputerLink(self.computer, url, token=token)
        await self.link.connect()
        await self.link.join(self.office)
        self.agent = AsyncAgent(url, token=token, office=self.office, name=self.agent_name, **agent_options)
        await self.agent.__aenter__()

    async def close(self) -> None:
        for step in (
            (self.agent.close() if self.agent else None),
            (self.link.close() if self.link else None),
            (self.computer.close() if self.computer else None),
        ):
            if step is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(step, 20)

    async def call(self, text: str, timeout: float = 10.0) -> tuple[bool, str]:
        """One echo call; (True, "") when the reply is the echo of ``text`` from this pair's
        Computer, else (False, what was wrong)."""
        assert self.agent is not None
        result = await self.agent.call_tool(self.name, "toolbox__echo", {"text": text}, timeout=timeout)
        if result.is_error:
            return False, f"error result: {text_of(result)[:200]}"
        if text_of(result) != text:
            return False, f"wrong reply {text_of(result)[:80]!r} for {text!r}"
        meta = result.meta or {}
        tags = (meta.get("a2c_tool_meta") or {}).get("tags") if isinstance(meta, dict) else None
        if tags != [self.name]:
            return False, f"reply from {tags!r}, expected [{self.name!r}]"
        return True, ""


async def start_pairs(
    count: int, tag: str, url: str, token: str, mcp_url: str, concurrency: int = 10, **agent_options: Any
) -> list[Pair]:
    pairs = [Pair(i, tag) for i in range(count)]
    gate = asyncio.Semaphore(concurrency)

    async def one(pair: Pair) -> None:
        async with gate:
            await pair.start(url, token, mcp_url, **agent_options)

    await asyncio.gather(*(one(p) for p in pairs))
    return pairs


async def close_pairs(pairs: list[Pair]) -> None:
    gate = asyncio.Semaphore(20)

    async def one(pair: Pair) -> None:
        async with gate:
            await pair.close()

    await asyncio.gather(*(one(p) for p in pairs))


def rss_mib(pid: int) -> float:
    """The resident set size of process ``pid`` in MiB (Linux ``/proc``)."""
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
