"""Delivery of back-to-back packets: the stall Nagle's algorithm adds when TCP_NODELAY is off.

One JSON line on stdout, like load.py::

    python bench/delivery.py --url http://127.0.0.1:PORT --token T --rounds 20

Each round: a Computer connects and joins a fresh office, then an Agent joins it; ``notify_*`` is
the time from the Agent's join ack to the Computer receiving ``notify:enter_office`` (0 when the
notification arrives first). Then the Agent sends two ``client:tool_call`` at once; ``burst_*`` is
the time until both are answered. Median and max over the rounds, in ms. With Nagle on, both are
tens of ms in every round (the peer's delayed ACK); with it off, about a millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import socketio

NS = "/smcp"


async def _connect(args: argparse.Namespace, sio: socketio.AsyncClient) -> None:
    await sio.connect(
        f"{args.url}?a2c_version={args.a2c_version}",
        auth={"token": args.token},
        namespaces=[NS],
        transports=args.transports.split(","),
        wait_timeout=10,
    )


async def one_round(args: argparse.Namespace, office: str) -> tuple[float, float]:
    comp = socketio.AsyncClient(reconnection=False)
    agent = socketio.AsyncClient(reconnection=False)
    entered: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def on_enter(data: Any) -> None:
        if not entered.done():
            entered.set_result(time.perf_counter())

    async def on_call(data: Any) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": "ok"}], "isError": False}

    comp.on("notify:enter_office", on_enter, namespace=NS)
    comp.on("client:tool_call", on_call, namespace=NS)
    try:
        await _connect(args, comp)
        ack = await comp.call(
            "server:join_office",
            {"role": "computer", "name": "c", "office_id": office},
            namespace=NS,
            timeout=10,
        )
        if ack != (True, None):
            raise RuntimeError(f"computer join refused: {ack}")
        await _connect(args, agent)
        ack = await agent.call(
            "server:join_office",
            {"role": "agent", "name": "a", "office_id": office},
            namespace=NS,
            timeout=10,
        )
        if ack != (True, None):
            raise RuntimeError(f"agent join refused: {ack}")
        acked = time.perf_counter()
        notify = max(0.0, await asyncio.wait_for(entered, 10) - acked)

        def call(req_id: str) -> Any:
            req = {
                "agent": "a",
                "req_id": req_id,
                "computer": "c",
                "tool_name": "t",
                "params": {},
                "timeout": 10,
            }
            return agent.call("client:tool_call", req, namespace=NS, timeout=10)

        start = time.perf_counter()
        await asyncio.gather(call("1"), call("2"))
        return notify * 1000, (time.perf_counter() - start) * 1000
    finally:
        for sio in (agent, comp):
            if sio.connected:
                await asyncio.wait_for(sio.disconnect(), 10)


async def measure(args: argparse.Namespace) -> dict[str, object]:
    figures = [await one_round(args, f"delivery-{i}") for i in range(args.rounds)]
    notify = [n for n, _ in figures]
    burst = [b for _, b in figures]
    return {
        "ok": True,
        "rounds": args.rounds,
        "notify_median_ms": round(statistics.median(notify), 3),
        "notify_max_ms": round(max(notify), 3),
        "burst_median_ms": round(statistics.median(burst), 3),
        "burst_max_ms": round(max(burst), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", default="bench-secret")
    ap.add_argument("--a2c-version", default="0.4.0")
    ap.add_argument("--transports", default="websocket")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--server-pid", type=int, default=0, help="accepted for run.py; not used")
    ap.add_argument("--scenario", default="delivery", help="accepted for run.py; not used")
    args = ap.parse_args()
    try:
        result = asyncio.run(measure(args))
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
