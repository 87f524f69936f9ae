"""Full-stack tool calls: Agent -> Server -> Computer -> stdio MCP echo server.

    python bench/fullstack.py --impl ours     --url URL --computer NAME --office O [--server-pid PID]
                              [--pair-calls N --mcp-script PATH]
    python bench/fullstack.py --impl official --url URL --computer NAME --office O    (official venv python)
    python bench/fullstack.py --impl mcp-direct --mcp-python PY \
        --mcp-script packages/smcp-testing/src/smcp/testing/mcp_servers/toolbox.py

``ours`` drives our ``smcp.agent.AsyncAgent``; ``official`` drives a2c-smcp 0.4.2's
``AsyncSMCPAgentClient`` (so this file must stay importable by that venv: standard library and
``common`` only at module level). The Server and the Computer are started by ``run.py``.
``mcp-direct`` calls the same echo tool with an mcp ``ClientSession`` over stdio: the floor.
With ``--pair-calls``, ``ours`` also alternates full-stack calls with MCP-direct ones made from
this process, and reports both p50s of that window and their difference (``pair_gap_ms``).

It measures latency at concurrency 1 and throughput at ``--concurrency`` (one agent, calls issued
concurrently), after a warm-up, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from common import Probe, Result, Window, describe, latency_summary, log, perf

Call = Callable[[], Awaitable[None]]


async def timed(call: Call, concurrency: int, n: int, deadline: float) -> tuple[list[float], list[str]]:
    lat: list[float] = []
    errors: list[str] = []
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < n and perf() < deadline:
            issued += 1
            t0 = perf()
            try:
                await call()
                lat.append(perf() - t0)
            except Exception as exc:
                errors.append(describe(exc))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat, errors


def check_echo(result: Any, text: str) -> None:
    is_error = getattr(result, "isError", None)
    content = getattr(result, "content", None) or []
    got = getattr(content[0], "text", None) if content else None
    if is_error or got != text:
        raise RuntimeError(f"bad echo result {result!r}"[:300])


async def measure(args: argparse.Namespace, call: Call, probe: Probe) -> Result:
    out: Result = {}
    _, werr = await timed(call, 1, args.warmup, perf() + 30)
    if werr:
        raise RuntimeError(f"warm-up errors: {werr[:3]}")
    for conc, n in ((1, args.n1), (args.concurrency, args.nc)):
        if conc > 1:
            await timed(call, conc, conc * 4, perf() + 15)
        await probe.wait_idle(2.0)
        probe.refresh()
        with Window(probe) as w:
            lat, err = await timed(call, conc, n, perf() + args.seconds)
        key = f"c{conc}"
        out[f"{key}_calls"] = len(lat)
        out[f"{key}_calls_per_s"] = round(len(lat) / w.wall, 1) if w.wall else None
        out.update(latency_summary(lat, prefix=f"{key}_"))
        m = w.metrics(ops=len(lat) or None)
        out[f"{key}_server_cpu_us_per_call"] = m.get("server_cpu_us_per_op")
        out[f"{key}_errors"] = len(err)
        if err:
            out.setdefault("first_errors", sorted(set(err))[:3])
    out["errors"] = int(out["c1_errors"]) + int(out[f"c{args.concurrency}_errors"])  # type: ignore[call-overload]
    return out


@contextlib.asynccontextmanager
async def direct_echo(args: argparse.Namespace, text: str) -> AsyncIterator[Call]:
    """One checked ``echo`` call on the stdio MCP server ``--mcp-script``, through an mcp
    ``ClientSession`` in this process."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=args.mcp_python, args=[args.mcp_script, "stdio"])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        async def call() -> None:
            check_echo(await session.call_tool("echo", {"text": text}), text)

        yield call


async def run_mcp_direct(args: argparse.Namespace, text: str) -> Result:
    async with direct_echo(args, text) as call:
        return await measure(args, call, Probe(None))


async def paired(args: argparse.Namespace, call: Call, text: str) -> Result:
    """``--pair-calls`` calls at concurrency 1 alternated with calls of the same echo tool on a
    second stdio MCP server driven directly (a ``ClientSession`` in this process), each pair in
    turn order: the full stack and MCP-direct measured in the same seconds, so that the gap
    between their p50s does not move with the machine's load between two runs."""
    async with direct_echo(args, text) as direct:
        stack: list[float] = []
        floor: list[float] = []
        for i in range(args.warmup + args.pair_calls):
            for fn, into in ((call, stack), (direct, floor))[:: 1 if i % 2 else -1]:
                t0 = perf()
                await fn()
                if i >= args.warmup:
                    into.append(perf() - t0)
    out: Result = {"pair_calls": len(stack)}
    out.update(latency_summary(stack, prefix="pair_stack_"))
    out.update(latency_summary(floor, prefix="pair_direct_"))
    out["pair_gap_ms"] = round(float(out["pair_stack_p50_ms"]) - float(out["pair_direct_p50_ms"]), 3)  # type: ignore[arg-type]
    return out


async def run_ours(args: argparse.Namespace, text: str) -> Result:
    from smcp.agent import AsyncAgent

    probe = Probe(args.server_pid)
    async with AsyncAgent(
        args.url, token=args.token, office=args.office, name=args.office, cache=False
    ) as agent:
        tools = await agent.get_tools(args.computer)
        names = [str(t.name) for t in tools]
        tool = next((n for n in names if n.endswith("__echo")), None)
        if tool is None:
            raise RuntimeError(f"echo tool not exposed by {args.computer}: {names}")

        async def call() -> None:
            check_echo(await agent.call_tool(args.computer, tool, {"text": text}, timeout=30), text)

        out = await measure(args, call, probe)
        if args.pair_calls and args.mcp_script:
            out.update(await paired(args, call, text))
        return out


async def run_official(args: argparse.Namespace, text: str) -> Result:
    from a2c_smcp.agent import AsyncSMCPAgentClient, DefaultAgentAuthProvider
    from a2c_smcp.smcp import JOIN_OFFICE_EVENT, SMCP_NAMESPACE

    probe = Probe(args.server_pid)
    auth = DefaultAgentAuthProvider(agent_id=args.office, office_id=args.office, api_key=args.token)
    agent = AsyncSMCPAgentClient(auth_provider=auth)
    try:
        await agent.connect_to_server(args.url)
        join = {"role": "agent", "name": args.office, "office_id": args.office}
        ret = await agent.call(JOIN_OFFICE_EVENT, join, namespace=SMCP_NAMESPACE, timeout=10)
        if not (isinstance(ret, (list, tuple)) and ret and ret[0] is True):
            raise RuntimeError(f"agent join_office refused: {ret!r}")
        tools = await agent.get_tools_from_computer(args.computer, timeout=10)
        names = [t["name"] for t in tools["tools"]]
        tool = next((n for n in names if n.endswith("__echo")), None)
        if tool is None:
            raise RuntimeError(f"echo tool not exposed by {args.computer}: {names}")

        async def call() -> None:
            check_echo(await agent.emit_tool_call(args.computer, tool, {"text": text}, 30), text)

        return await measure(args, call, probe)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(agent.disconnect(), 5)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop  # type: ignore[no-any-return]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", required=True, choices=["ours", "official", "mcp-direct"])
    ap.add_argument("--url", default="")
    ap.add_argument("--token", default="bench-secret")
    ap.add_argument("--office", default="fs-office")
    ap.add_argument("--computer", default="fs-computer")
    ap.add_argument("--server-pid", type=int, default=0)
    ap.add_argument("--mcp-python", default=sys.executable)
    ap.add_argument("--mcp-script", default="")
    ap.add_argument("--n1", type=int, default=300)
    ap.add_argument(
        "--pair-calls",
        type=int,
        default=0,
        help="ours: also this many calls alternated with MCP-direct ones (needs --mcp-script)",
    )
    ap.add_argument("--nc", type=int, default=800)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--payload-bytes", type=int, default=64)
    ap.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="this driver's event loop (ours and mcp-direct)",
    )
    args = ap.parse_args()
    os.environ.setdefault("A2C_SMCP_LOG_LEVEL", "warning")
    text = "x" * args.payload_bytes
    runner = {"ours": run_ours, "official": run_official, "mcp-direct": run_mcp_direct}[args.impl]
    t0 = perf()
    try:
        with asyncio.Runner(loop_factory=loop_factory(args.loop)) as run:
            out = run.run(runner(args, text))
        out["ok"] = not out.get("errors")
        if not out["ok"]:
            out["error"] = f"{out['errors']} failed calls: {out.get('first_errors')}"
    except Exception as exc:
        log(f"fullstack {args.impl} failed: {exc!r}")
        out = {"ok": False, "error": describe(exc, 400)}
    out.update(impl=args.impl, concurrency=args.concurrency, total_s=round(perf() - t0, 2))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
