"""How fast back-to-back packets arrive: the stall Nagle's algorithm adds when TCP_NODELAY is off.

Needs ``smcp-testing[server]`` (raw python-socketio peers). One :func:`delivery_round`: a Computer
joins a fresh office, then an Agent joins it; ``notify`` is the time from the Agent's join ack to
the Computer receiving ``notify:enter_office`` (0 when the notification arrives first). Then the
Agent sends two ``client:tool_call`` at once; ``burst`` is the time until both are answered. With
Nagle on, both take tens of ms in every round (the peer's delayed ACK); with it off, about a ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

import socketio

from smcp.core.events import NAMESPACE, ClientEvent, NotifyEvent, ServerEvent
from smcp.core.roles import Role
from smcp.core.versioning import PROTOCOL_VERSION

__all__ = ["delivery_round", "summary"]


async def delivery_round(
    url: str,
    office: str,
    *,
    token: str,
    transports: Sequence[str] = ("websocket",),
    a2c_version: str = PROTOCOL_VERSION,
    timeout: float = 10.0,
) -> tuple[float, float]:
    """One round against the server at ``url``; returns ``(notify_ms, burst_ms)``."""
    comp = socketio.AsyncClient(reconnection=False)
    agent = socketio.AsyncClient(reconnection=False)
    entered: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def on_enter(data: Any) -> None:
        if not entered.done():
            entered.set_result(time.perf_counter())

    async def on_call(data: Any) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": "ok"}], "isError": False}

    comp.on(NotifyEvent.ENTER_OFFICE.value, on_enter, namespace=NAMESPACE)
    comp.on(ClientEvent.TOOL_CALL.value, on_call, namespace=NAMESPACE)

    async def join(sio: socketio.AsyncClient, role: Role, name: str) -> None:
        await sio.connect(
            f"{url}?a2c_version={a2c_version}",
            auth={"token": token},
            namespaces=[NAMESPACE],
            transports=list(transports),
            wait_timeout=timeout,
        )
        req = {"role": role.value, "name": name, "office_id": office}
        ack = await sio.call(ServerEvent.JOIN_OFFICE.value, req, namespace=NAMESPACE, timeout=timeout)
        if ack != (True, None):
            raise RuntimeError(f"{role.value} join refused: {ack}")

    def call(req_id: str) -> Any:
        req = {"agent": "a", "req_id": req_id, "computer": "c", "tool_name": "t", "params": {}, "timeout": 10}
        return agent.call(ClientEvent.TOOL_CALL.value, req, namespace=NAMESPACE, timeout=timeout)

    try:
        await join(comp, Role.COMPUTER, "c")
        await join(agent, Role.AGENT, "a")
        acked = time.perf_counter()
        notify = max(0.0, await asyncio.wait_for(entered, timeout) - acked)
        start = time.perf_counter()
        replies = await asyncio.gather(call("1"), call("2"))
        burst = time.perf_counter() - start
        if not all(isinstance(r, dict) and r.get("isError") is False for r in replies):
            raise RuntimeError(f"unexpected replies: {replies!r}")
        return notify * 1000, burst * 1000
    finally:
        for sio in (agent, comp):
            if sio.connected:
                await asyncio.wait_for(sio.disconnect(), timeout)


def summary(figures: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Median and max of the rounds' notify and burst times, in ms."""
    notify = [n for n, _ in figures]
    burst = [b for _, b in figures]
    return {
        "notify_median_ms": round(statistics.median(notify), 3),
        "notify_max_ms": round(max(notify), 3),
        "burst_median_ms": round(statistics.median(burst), 3),
        "burst_max_ms": round(max(burst), 3),
    }
