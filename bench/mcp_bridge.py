"""The MCP bridge's added latency per call.

    python bench/mcp_bridge.py [--n 200] [--rounds 3] [--payload-bytes 64]

Starts our server, our Computer hosting the toolbox MCP server (stdio) and ``smcp-agent mcp``
(stdio), then calls the toolbox's ``echo`` at concurrency 1 along three paths, alternating them
round by round so that machine load hits all three alike:

- ``mcp-direct``: an mcp ``ClientSession`` → the toolbox over stdio (the floor);
- ``agent``: our ``AsyncAgent`` → Server → Computer → toolbox (what the bridge builds on);
- ``bridge``: a ``ClientSession`` → ``smcp-agent mcp`` → Server → Computer → toolbox.

Prints one JSON line: the latency summary of each path (``fullstack.py``'s ``timed`` and
``common.latency_summary``) and ``bridge_added_p50_ms`` = bridge − mcp-direct, ``bridge_over_agent_p50_ms``
= bridge − agent (the bridge's own hop: stdio JSON-RPC plus its handler). Needs the workspace
packages with ``smcp-agent[mcp]`` and ``smcp-testing``; processes log to ``$TMPDIR/smcp-bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import latency_summary, log
from fullstack import check_echo, timed

TOKEN = "bench-secret"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from smcp.agent import AsyncAgent
    from smcp.testing import roles
    from smcp.testing.mcp_config import toolbox_config
    from smcp.testing.mcp_servers import script_path
    from smcp.testing.processes import ProcessManager

    root = Path(tempfile.gettempdir()) / "smcp-bench" / f"mcp-bridge-{int(time.time())}"
    procs = ProcessManager(root)
    text = "x" * args.payload_bytes
    try:
        server = await roles.start_server(procs, token=TOKEN, extra_args=["--max-agents-per-office", "4"])
        config = toolbox_config(root / "mcp.json")
        await roles.start_computer(
            procs, url=server.url, office="bench", name="c1", config=config, token=TOKEN
        )
        bridge_argv = [
            *roles.our_command("smcp-agent", "smcp.agent.cli"),
            "--url", server.url, "--token", TOKEN, "--name", "bench-bridge", "mcp", "--office", "bench",
        ]  # fmt: skip
        direct = StdioServerParameters(command=sys.executable, args=[str(script_path("toolbox")), "stdio"])
        via = StdioServerParameters(command=bridge_argv[0], args=bridge_argv[1:], env=roles.our_env())
        samples: dict[str, list[float]] = {"mcp-direct": [], "agent": [], "bridge": []}
        errors: dict[str, list[str]] = {key: [] for key in samples}
        async with (
            stdio_client(direct) as (dr, dw),
            ClientSession(dr, dw) as direct_session,
            stdio_client(via) as (br, bw),
            ClientSession(br, bw) as bridge_session,
            AsyncAgent(server.url, token=TOKEN, office="bench", name="bench-agent", cache=False) as agent,
        ):
            await direct_session.initialize()
            await bridge_session.initialize()
            names = {t.name for t in (await bridge_session.list_tools()).tools}
            if "c1__toolbox__echo" not in names:
                raise RuntimeError(f"the bridge does not list c1__toolbox__echo: {sorted(names)}")

            async def call_direct() -> None:
                check_echo(await direct_session.call_tool("echo", {"text": text}), text)

            async def call_agent() -> None:
                check_echo(await agent.call_tool("c1", "toolbox__echo", {"text": text}, timeout=30), text)

            async def call_bridge() -> None:
                check_echo(await bridge_session.call_tool("c1__toolbox__echo", {"text": text}), text)

            calls = {"mcp-direct": call_direct, "agent": call_agent, "bridge": call_bridge}
            for call in calls.values():  # warm-up
                await timed(call, 1, args.warmup, time.perf_counter() + 30)
            for round_no in range(args.rounds):
                for key, call in calls.items():
                    lat, err = await timed(call, 1, args.n, time.perf_counter() + args.seconds)
                    samples[key] += lat
                    errors[key] += err
                log(f"round {round_no + 1}/{args.rounds} done")
    finally:
        procs.stop_all()
    out: dict[str, Any] = {"payload_bytes": args.payload_bytes, "logs": str(root)}
    for key, lat in samples.items():
        out[key] = {"calls": len(lat), "errors": len(errors[key]), **latency_summary(lat)}
    p50 = {key: out[key]["p50_ms"] for key in samples}
    if None not in p50.values():
        out["bridge_added_p50_ms"] = round(p50["bridge"] - p50["mcp-direct"], 3)
        out["bridge_over_agent_p50_ms"] = round(p50["bridge"] - p50["agent"], 3)
    return out


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="calls per path and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0, help="time cap per path and round")
    ap.add_argument("--payload-bytes", type=int, default=64)
    print(json.dumps(asyncio.run(main(ap.parse_args()))), flush=True)


if __name__ == "__main__":
    cli()
