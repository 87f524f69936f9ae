"""Load and soak: Agent x Computer pairs, each pair in an office of its own, calling for a bounded
time with a bounded rate. Zero lost or misrouted replies (every reply is the echo of its own
request, tagged by the Computer it was meant for), zero hung calls, the server's RSS at the
start, middle and end, and p50/p99 of the call latency.

CI runs 60 s with ``SMCP_SOAK_PAIRS`` (default 20) pairs, one call per pair per second. What limits
the size on the 2-core reference machine is CPU: the pairs and their MCP sessions share this one
test process, which saturates first (100 pairs under a load average of 13: 15 calls/s, p50 7 s).
The full run is the same test with ``SMCP_SOAK_SECONDS=300`` (docs/reliability.md). The server
is a real ``smcp-server`` process; the pairs share one streamable-HTTP toolbox MCP server.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import pytest

from smcp.testing.roles import DEFAULT_TOKEN, start_server

from ._faults import close_pairs, rss_mib, start_pairs, toolbox_http

SECONDS = float(os.environ.get("SMCP_SOAK_SECONDS", "60"))
PAIRS = int(os.environ.get("SMCP_SOAK_PAIRS", "20"))
#: Seconds between two calls of one pair (the offered load is PAIRS / INTERVAL calls per second).
INTERVAL = float(os.environ.get("SMCP_SOAK_INTERVAL", "1.0"))
HUNG_AFTER = 15.0

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(SECONDS + 240)]


async def test_load_pairs(procs, figure) -> None:
    server = await start_server(procs, name="server")
    mcp_url = await toolbox_http(procs)
    started_pairs = time.monotonic()
    pairs = await start_pairs(PAIRS, "load", server.url, DEFAULT_TOKEN, mcp_url)
    figure(f"load: {PAIRS} pairs connected, joined and hosting", time.monotonic() - started_pairs, "s")
    latencies: list[float] = []
    wrong: list[str] = []
    hung = 0
    calls = 0
    stop = asyncio.Event()

    async def run(index: int) -> None:
        nonlocal hung, calls
        pair = pairs[index]
        seq = 0
        await asyncio.sleep(INTERVAL * index / PAIRS)  # spread the pairs over one interval
        while not stop.is_set():
            seq += 1
            text = f"{pair.name}#{seq}"
            begun = time.perf_counter()
            try:
                ok, why = await asyncio.wait_for(pair.call(text, timeout=10), HUNG_AFTER)
            except TimeoutError:
                hung += 1
                continue
            except Exception as exc:
                ok, why = False, f"{type(exc).__name__}: {exc}"
            calls += 1
            latencies.append(time.perf_counter() - begun)
            if not ok:
                wrong.append(f"{text}: {why}")
            await asyncio.sleep(max(0.0, INTERVAL - (time.perf_counter() - begun)))

    try:
        workers = [asyncio.ensure_future(run(i)) for i in range(PAIRS)]
        await asyncio.sleep(min(5.0, SECONDS / 6))  # warm-up
        rss = {"start": rss_mib(server.proc.pid)}
        begun = time.monotonic()
        await asyncio.sleep(SECONDS / 2)
        rss["middle"] = rss_mib(server.proc.pid)
        await asyncio.sleep(max(0.0, SECONDS - (time.monotonic() - begun)))
        rss["end"] = rss_mib(server.proc.pid)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), HUNG_AFTER + INTERVAL + 5)
    finally:
        stop.set()
        await close_pairs(pairs)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    figure(f"load: calls in {SECONDS:.0f} s over {PAIRS} pairs", calls, "calls")
    figure("load: lost or misrouted replies", len(wrong), "", limit=0)
    figure("load: hung calls", hung, "", limit=0)
    figure("load: p50 latency", p50, "ms")
    figure("load: p99 latency", p99, "ms")
    for when, value in rss.items():
        figure(f"load: server RSS at the {when}", value, "MiB")
    assert not wrong, wrong[:5]
    assert hung == 0
    assert calls >= PAIRS * 5  # every pair kept calling (the rate depends on the machine's load)
    assert abs(rss["end"] - rss["start"]) <= 0.10 * rss["start"], rss
