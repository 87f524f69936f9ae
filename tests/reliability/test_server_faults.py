"""The server goes away under its clients (real server processes, loopback only).

- restart with 50 Computers and 50 Agents in 50 offices: all back in their offices within 10 s
  of the new server listening; calls made after that succeed; no call hangs;
- SIGTERM with calls in flight: every caller gets an error within 2 s; exit status 0 within 5 s.

The Computers and Agents of the restart run in this process (one shared streamable-HTTP toolbox
MCP server), so 50 + 50 clients cost sockets, not 100 interpreters.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from smcp.agent.errors import SMCPError
from smcp.core.errors import ConnectionLostError, NotConnectedError
from smcp.testing.roles import DEFAULT_TOKEN, agent, start_server

from ._faults import (
    close_pairs,
    echo_ok,
    office_name,
    start_pairs,
    toolbox_computer,
    toolbox_http,
    wait_until,
)

pytestmark = [pytest.mark.anyio]

OFFICES = 50


@pytest.mark.timeout(240)
async def test_server_restart_50_offices(procs, figure) -> None:
    first = await start_server(procs, name="server-1")
    port = first.proc.port
    mcp_url = await toolbox_http(procs)
    pairs = await start_pairs(OFFICES, "restart", first.url, DEFAULT_TOKEN, mcp_url)
    try:
        before = await asyncio.gather(*(p.call("before") for p in pairs))
        assert all(ok for ok, _ in before), [why for ok, why in before if not ok][:3]
        first.proc.signal_group(signal.SIGTERM)
        assert await first.proc.await_exit(10) == 0
        await asyncio.sleep(1.0)  # the server is down for a while
        await start_server(procs, name="server-2", extra_args=["--port", str(port)])

        def all_back() -> bool:
            return all(p.link.office == p.office and p.agent.office == p.office for p in pairs)

        async def all_listed() -> bool:
            if not all_back():
                return False
            try:
                rooms = await asyncio.gather(*(p.agent.computers() for p in pairs))
            except (SMCPError, ConnectionLostError, NotConnectedError):
                return False  # a client still between reconnect and re-join
            return all(any(s.name == p.name for s in room) for p, room in zip(pairs, rooms, strict=True))

        back = await wait_until(all_listed, 60, every=0.2)
        figure(f"server restart: {OFFICES}+{OFFICES} clients back in their offices", back, "s", limit=10)
        started = time.monotonic()
        after = await asyncio.wait_for(
            asyncio.gather(*(p.call(f"after-{i}") for i, p in enumerate(pairs))), 30
        )
        figure("server restart: 50 calls after the restart", time.monotonic() - started, "s")
        failed = [why for ok, why in after if not ok]
        assert not failed, failed[:3]
        assert back <= 10, f"back after {back:.1f} s"
    finally:
        await close_pairs(pairs)


@pytest.mark.timeout(120)
async def test_server_sigterm_with_calls_in_flight(procs, figure) -> None:
    server = await start_server(procs, name="server")
    office = office_name("sigterm")
    await toolbox_computer(procs, server.url, office)
    async with agent(server.url, office=office, token=server.token, reconnect=False) as a:
        assert await echo_ok(a, "lap")
        calls = [
            asyncio.ensure_future(
                a.call_tool("lap", "toolbox__slow_echo", {"text": str(i), "seconds": 30}, timeout=60)
            )
            for i in range(8)
        ]
        await asyncio.sleep(1.0)
        assert not any(c.done() for c in calls)
        sent = time.monotonic()
        server.proc.popen.send_signal(signal.SIGTERM)
        errors: list[float] = []
        for call in calls:
            with pytest.raises((SMCPError, ConnectionLostError)):
                await asyncio.wait_for(call, 10)
            errors.append(time.monotonic() - sent)
        code = await server.proc.await_exit(10)
        exited = time.monotonic() - sent
        figure("SIGTERM: last of 8 in-flight callers gets an error", max(errors), "s", limit=2.0)
        figure("SIGTERM: server exit", exited, "s", limit=5.0)
        assert max(errors) <= 2.0
        assert code == 0
        assert exited <= 5.0
