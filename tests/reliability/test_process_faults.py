"""Processes die or stop under a call (real processes, loopback only).

- a Computer killed during a call: the Agent gets an error within 1 s, not at its timeout;
- an MCP server killed during a call: an error result within 2 s; supervision restarts it, the
  tool list is re-announced and the next call works;
- a Computer stopped (SIGSTOP) during a call: the call ends at its deadline + grace; after
  SIGCONT the Computer is callable again without a restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from smcp.agent.errors import SMCPError
from smcp.core.errors import ConnectionLostError
from smcp.testing.roles import agent, start_server

from ._faults import children_matching, echo_ok, office_name, toolbox_computer, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


async def test_computer_killed_during_call(procs, figure) -> None:
    server = await start_server(procs, name="server")
    office = office_name("ckill")
    computer = await toolbox_computer(procs, server.url, office)
    async with agent(server.url, office=office, token=server.token) as a:
        assert await echo_ok(a, "lap")
        call = asyncio.ensure_future(
            a.call_tool("lap", "toolbox__slow_echo", {"text": "x", "seconds": 30}, timeout=60)
        )
        await asyncio.sleep(0.5)
        assert not call.done()
        killed = time.monotonic()
        computer.kill()
        with pytest.raises((SMCPError, ConnectionLostError)) as caught:
            await asyncio.wait_for(call, 10)
        took = time.monotonic() - killed
        figure("Computer killed during a call: error at the Agent", took, "s", limit=1.0)
        assert took <= 1.0, f"error after {took:.2f} s ({caught.value!r})"


async def test_mcp_server_killed_during_call(procs, figure) -> None:
    server = await start_server(procs, name="server")
    office = office_name("mkill")
    computer = await toolbox_computer(procs, server.url, office)
    async with agent(server.url, office=office, token=server.token) as a:
        announced: list[float] = []
        a.on("update_tool_list")(lambda note: announced.append(time.monotonic()))
        assert await echo_ok(a, "lap")
        [mcp_pid] = children_matching(computer.proc.pid, "toolbox.py")
        call = asyncio.ensure_future(
            a.call_tool("lap", "toolbox__slow_echo", {"text": "x", "seconds": 30}, timeout=60)
        )
        await asyncio.sleep(0.5)
        assert not call.done()
        killed = time.monotonic()
        os.kill(mcp_pid, signal.SIGKILL)
        result = await asyncio.wait_for(call, 10)
        took = time.monotonic() - killed
        figure("MCP server killed during a call: error result", took, "s", limit=2.0)
        assert result.is_error, result
        assert took <= 2.0

        async def restarted() -> bool:
            pids = children_matching(computer.proc.pid, "toolbox.py")
            return bool(pids) and pids != [mcp_pid]

        await wait_until(restarted, 20)

        async def reannounced() -> bool:
            return any(t > killed for t in announced) and any(
                tool.name == "toolbox__echo" for tool in await a.get_tools("lap")
            )

        await wait_until(reannounced, 20, every=0.2)
        assert await echo_ok(a, "lap", "after restart")
        figure("MCP server killed: restarted, re-announced, callable", time.monotonic() - killed, "s")


async def test_computer_stopped_during_call(procs, figure) -> None:
    # the default heartbeat (25 s + 20 s): the server keeps the stopped Computer's session
    server = await start_server(procs, name="server", extra_args=["--grace", "2"])
    office = office_name("stop")
    computer = await toolbox_computer(procs, server.url, office)
    async with agent(server.url, office=office, token=server.token) as a:
        assert await echo_ok(a, "lap")
        timeout, grace = 2, 2.0
        started = time.monotonic()
        call = asyncio.ensure_future(
            a.call_tool("lap", "toolbox__slow_echo", {"text": "x", "seconds": 1}, timeout=timeout)
        )
        await asyncio.sleep(0.1)
        computer.proc.signal_group(signal.SIGSTOP)
        try:
            result = await asyncio.wait_for(call, timeout + grace + 10)
            ended = time.monotonic() - started
        finally:
            computer.proc.signal_group(signal.SIGCONT)
        figure("SIGSTOP during a call: the call ends", ended, "s", limit=timeout + grace + 1.5)
        assert result.is_error and (result.meta or {}).get("a2c_timeout") is True, result
        assert timeout <= ended <= timeout + grace + 1.5
        back = await wait_until(lambda: echo_ok(a, "lap", "again"), 10, every=0.2)
        figure("after SIGCONT: callable again", back, "s")
        assert computer.proc.alive()
