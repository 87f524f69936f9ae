"""A Computer's network fails under it (real processes, loopback only, a TCP proxy in between).

- network change: its socket is reset on the client side while the server keeps a half-open one;
  it must be back in its office and callable within ping interval + ping timeout + 5 s;
- silent drop (nothing passes, no FIN/RST): both sides notice within ping interval + ping timeout,
  and the Computer is callable again within 10 s after the network returns.

The server runs with a 3 s + 3 s heartbeat (the requirements are relative to it), the Agent
talks to the server directly and the Computer through the proxy.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from smcp.testing.roles import agent
from smcp.testing.tcpproxy import TcpProxy

from ._faults import (
    PING_INTERVAL,
    PING_TIMEOUT,
    echo_ok,
    fast_server,
    office_name,
    toolbox_computer,
    until_callable,
    wait_until,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

HEARTBEAT = PING_INTERVAL + PING_TIMEOUT
#: Seconds the network stays dead after both sides noticed the drop.
OUTAGE_AFTER_NOTICE = 5.0


async def test_network_change_half_open(procs, figure) -> None:
    server = await fast_server(procs)
    office = office_name("netchange")
    async with TcpProxy(server.proc.port or 0) as proxy:
        computer = await toolbox_computer(procs, proxy.url, office)
        async with agent(server.url, office=office, token=server.token) as a:
            assert await echo_ok(a, "lap")
            started = time.monotonic()
            assert await proxy.reset_clients() >= 1
            back = await until_callable(a, "lap", timeout=HEARTBEAT + 30)
            figure("network change: back in office and callable", back, "s", limit=HEARTBEAT + 5)
            assert computer.proc.alive()
            assert back <= HEARTBEAT + 5, f"callable again after {back:.1f} s"
            assert time.monotonic() - started < HEARTBEAT + 30


async def test_silent_drop(procs, figure) -> None:
    server = await fast_server(procs)
    office = office_name("silent")
    async with TcpProxy(server.proc.port or 0) as proxy:
        computer = await toolbox_computer(procs, proxy.url, office)
        async with agent(server.url, office=office, token=server.token) as a:
            assert await echo_ok(a, "lap")
            log_before = len(computer.proc.log_text())
            assert proxy.blackhole() >= 1
            started = time.monotonic()

            seen: dict[str, float] = {}

            async def both_noticed() -> bool:
                if "server" not in seen and all(s.name != "lap" for s in await a.computers()):
                    seen["server"] = time.monotonic() - started
                if "computer" not in seen and "lost the connection" in computer.proc.log_text()[log_before:]:
                    seen["computer"] = time.monotonic() - started
                return len(seen) == 2

            await wait_until(both_noticed, HEARTBEAT + 20, every=0.2)
            figure("silent drop: server drops the session", seen["server"], "s", limit=HEARTBEAT + 2)
            figure("silent drop: Computer notices", seen["computer"], "s", limit=HEARTBEAT + 2)
            await asyncio.sleep(OUTAGE_AFTER_NOTICE)  # reconnect attempts meet the dead network too
            proxy.restore()
            back = await until_callable(a, "lap", timeout=40)
            figure("silent drop: callable after the network returns", back, "s", limit=10)
            assert seen["server"] <= HEARTBEAT + 2
            assert seen["computer"] <= HEARTBEAT + 2
            assert back <= 10, f"callable {back:.1f} s after the network returned"
            assert computer.proc.alive()
