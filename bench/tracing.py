"""Per-call cost of tracing: one tool call Agent → Server → Computer → stdio MCP echo, tracing off and on.

    python bench/tracing.py [--calls 1500] [--repeat 5] [--baseline-src /path/to/other/checkout]

Every mode runs in its own process (alternating, ``--repeat`` times) with the server, the Computer
and the Agent in one event loop and the toolbox MCP server over stdio:

- ``off``: no tracer provider (the libraries do not trace; mcp itself imports the OpenTelemetry API);
- ``on``: the OpenTelemetry SDK's tracer provider with a batch span processor and an exporter that
  drops the spans (the cost of making the spans, not of sending them);
- ``baseline`` (with ``--baseline-src``): the same as ``off`` on the sources of another checkout
  (e.g. the commit before tracing), put first on ``PYTHONPATH``.

It prints, per mode, the median wall time per call and the median CPU time per call of the process
(server + Computer + Agent; the MCP server's process excluded) and the ratios to ``off``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _install_provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    return provider


async def _measure(calls: int) -> dict[str, float]:
    from smcp.agent import AsyncAgent
    from smcp.computer import Computer, ComputerLink
    from smcp.computer._config import merge_configs
    from smcp.server.core import ServerSettings
    from smcp.testing.mcp_config import toolbox_config
    from smcp.testing.server import TOKEN, running

    with tempfile.TemporaryDirectory() as tmp:
        config = toolbox_config(Path(tmp) / "mcp.json")
        loaded = merge_configs([config])

        async def approve(tool: str, params: Any) -> bool:
            return True

        computer = Computer("bench", loaded.servers, confirm=approve, spool_dir=Path(tmp) / "spool")
        async with running(ServerSettings()) as h:
            await computer.start()
            link = ComputerLink(computer, h.url, token=TOKEN)
            await link.connect()
            await link.join("bench")
            try:
                async with AsyncAgent(h.url, token=TOKEN, office="bench", name="agent", cache=False) as agent:
                    for _ in range(200):  # warm-up
                        await agent.call_tool("bench", "toolbox__echo", {"text": "x"}, timeout=30)
                    cpu, wall = time.process_time(), time.perf_counter()
                    for _ in range(calls):
                        await agent.call_tool("bench", "toolbox__echo", {"text": "x"}, timeout=30)
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            finally:
                await link.close()
                await computer.close()
    return {"wall_us": wall / calls * 1e6, "cpu_us": cpu / calls * 1e6}


def child(mode: str, calls: int) -> None:
    if mode == "on":
        _install_provider()
    result = asyncio.run(_measure(calls))
    if mode != "on":
        try:
            from smcp.core import tracecontext
        except ImportError:  # a baseline from before tracing
            pass
        else:
            assert tracecontext.tracer("bench", "0") is None  # tracing is off
    import smcp.server.core._handlers as handlers

    print(json.dumps({"mode": mode, "source": handlers.__file__, **result}), flush=True)


def run_child(mode: str, calls: int, baseline_src: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if mode == "baseline" and baseline_src is not None:
        paths = [str(p) for p in sorted((baseline_src / "packages").glob("*/src"))]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, __file__, "--child", "off" if mode == "baseline" else mode, "--calls", str(calls)],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    record: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    record["mode"] = mode
    return record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, help="a checkout to compare 'off' with")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.calls)
        return
    modes = ["off", "on"] + (["baseline"] if args.baseline_src else [])
    records: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for repeat in range(args.repeat):  # alternating order, so drift hits every mode
        for mode in modes if repeat % 2 == 0 else reversed(modes):
            record = run_child(mode, args.calls, args.baseline_src)
            records[mode].append(record)
            print(
                f"  repeat {repeat + 1} {mode:8} wall {record['wall_us']:8.1f} us",
                f"cpu {record['cpu_us']:8.1f} us",
            )
    med = {
        m: {k: statistics.median(r[k] for r in rs) for k in ("wall_us", "cpu_us")}
        for m, rs in records.items()
    }
    print(f"\n{args.calls} calls x {args.repeat} repeats; medians per call")
    print("| mode | wall µs | CPU µs | wall / off | CPU / off |")
    print("|---|---:|---:|---:|---:|")
    for mode in modes:
        wall, cpu = med[mode]["wall_us"], med[mode]["cpu_us"]
        print(
            f"| {mode} | {wall:.1f} | {cpu:.1f} | {wall / med['off']['wall_us']:.3f} | "
            f"{cpu / med['off']['cpu_us']:.3f} |"
        )


if __name__ == "__main__":
    main()
