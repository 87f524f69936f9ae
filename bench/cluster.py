"""Cluster scenario: one node vs two nodes on one Redis, the same load.

``python bench/cluster.py [--seconds 8] [--pairs 64] [--concurrency 16,64]``

Starts a private ``redis-server`` (free port, no persistence) and ``smcp-server --redis-url``
nodes, then WebSocket Agents and Computers (raw python-socketio, one office per pair). With two
nodes, half of the pairs have their Agent and Computer on different nodes. For each layout and
in-flight level it reports calls/s, p50/p99, CPU per call of the server processes and of Redis,
and derives the cross-node overhead per call and the projected capacity of N nodes on N cores.
A benchmark, not a test: nothing here fails a build.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import socketio

TOKEN = "bench-token"
NS = "/smcp"
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def start_node(redis_url: str | None, prefix: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    argv = [
        sys.executable,
        "-m",
        "smcp.server.asgi.cli",
        "--port",
        "0",
        "--token",
        TOKEN,
        "--log-level",
        "warning",
    ]
    if redis_url is not None:
        argv += ["--redis-url", redis_url, "--cluster-prefix", prefix]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log.open("wb"), start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if line.startswith("LISTENING "):
            return proc, int(line.split()[1])
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"node did not start; see {log}")


async def connect(url: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        f"{url}?a2c_version=0.4.0",
        auth={"token": TOKEN},
        namespaces=[NS],
        transports=["websocket"],
        wait_timeout=10,
    )
    return sio


async def join(sio: socketio.AsyncClient, role: str, name: str, office: str) -> None:
    ack = await sio.call(
        "server:join_office", {"role": role, "name": name, "office_id": office}, namespace=NS, timeout=10
    )
    assert tuple(ack) == (True, None), ack


async def run_layout(
    urls: list[str], pairs: int, concurrency: int, seconds: float, *, pids: list[int], redis_pid: int
) -> dict[str, Any]:
    """``pairs`` Agent/Computer pairs spread over ``urls``; ``concurrency`` calls in flight.

    CPU is counted during the calls only (not while the clients connect, join and leave).
    """
    clients: list[socketio.AsyncClient] = []
    agents: list[tuple[socketio.AsyncClient, str, bool]] = []
    n = len(urls)
    for i in range(pairs):
        agent_node, computer_node = i % n, (i // 2) % n
        comp = await connect(urls[computer_node])

        @comp.on("client:tool_call", namespace=NS)
        async def answer(data: Any) -> Any:
            return {"content": [{"type": "text", "text": "ok"}], "isError": False}

        await join(comp, "computer", f"c{i}", f"o{i}")
        agent = await connect(urls[agent_node])
        await join(agent, "agent", f"a{i}", f"o{i}")
        clients += [comp, agent]
        agents.append((agent, f"c{i}", agent_node != computer_node))
    latencies: dict[bool, list[float]] = {False: [], True: []}
    stop = time.monotonic() + seconds
    errors = 0

    async def worker(k: int) -> None:
        nonlocal errors
        j = k
        while time.monotonic() < stop:
            agent, computer, crossing = agents[j % len(agents)]
            j += concurrency
            req = {
                "agent": "a",
                "req_id": str(j),
                "computer": computer,
                "tool_name": "t",
                "params": {},
                "timeout": 10,
            }
            started = time.perf_counter()
            reply = await agent.call("client:tool_call", req, namespace=NS, timeout=20)
            latencies[crossing].append(time.perf_counter() - started)
            if not isinstance(reply, dict) or reply.get("isError") is not False:
                errors += 1

    await asyncio.sleep(0.5)
    cpu0, redis0 = sum(cpu_seconds(p) for p in pids), cpu_seconds(redis_pid)
    began = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.monotonic() - began
    server_cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    redis_cpu = cpu_seconds(redis_pid) - redis0
    for sio in clients:
        await sio.disconnect()
    every = sorted(latencies[False] + latencies[True])
    return {
        "calls": len(every),
        "elapsed": elapsed,
        "errors": errors,
        "p50_ms": every[len(every) // 2] * 1000,
        "p99_ms": every[int(len(every) * 0.99)] * 1000,
        "local_p50_ms": _p50(latencies[False]),
        "cross_p50_ms": _p50(latencies[True]),
        "server_cpu_us_per_call": server_cpu / len(every) * 1e6,
        "redis_cpu_us_per_call": redis_cpu / len(every) * 1e6,
    }


def _p50(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] * 1000 if values else None


async def measure(
    nodes: int, args: argparse.Namespace, redis_pid: int, redis_url: str, out: Path
) -> list[dict[str, Any]]:
    """``nodes`` cluster nodes; 0 means one node without Redis (the single-server baseline)."""
    procs = []
    prefix = f"bench{nodes}-{os.getpid()}"
    try:
        for i in range(max(nodes, 1)):
            procs.append(start_node(redis_url if nodes else None, prefix, out / f"node{nodes}-{i}.log"))
        urls = [f"http://127.0.0.1:{port}" for _, port in procs]
        rows = []
        for concurrency in args.concurrency:
            pids = [p.pid for p, _ in procs]
            result = await run_layout(
                urls, args.pairs, concurrency, args.seconds, pids=pids, redis_pid=redis_pid
            )
            calls = result["calls"]
            rows.append(
                {
                    "nodes": nodes,
                    "in_flight": concurrency,
                    "calls_per_s": calls / result["elapsed"],
                    **result,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        return rows
    finally:
        for p, _ in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p, _ in procs:
            p.wait(10)


async def amain(args: argparse.Namespace) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench/cluster.py needs redis-server")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    redis = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        url = f"redis://127.0.0.1:{port}/0"
        alone = await measure(0, args, redis.pid, url, out)
        one = await measure(1, args, redis.pid, url, out)
        two = await measure(2, args, redis.pid, url, out)
    finally:
        redis.terminate()
        redis.wait(10)
    print()
    head = ["nodes", "in flight", "calls/s", "p50 ms", "p99 ms", "server CPU µs/call", "Redis CPU µs/call"]
    print("| " + " | ".join([*head, "local p50 ms", "cross p50 ms"]) + " |")
    print("|---" * (len(head) + 2) + "|")
    for r in alone + one + two:
        cells = [
            "0 (no Redis)" if not r["nodes"] else str(r["nodes"]),
            str(r["in_flight"]),
            f"{r['calls_per_s']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['server_cpu_us_per_call']:.0f}",
            f"{r['redis_cpu_us_per_call']:.0f}",
            f"{r['local_p50_ms'] or 0:.2f}",
            f"{r['cross_p50_ms'] or 0:.2f}",
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    for base, a, b in zip(alone, one, two, strict=True):
        single = base["server_cpu_us_per_call"]
        more = a["server_cpu_us_per_call"] + a["redis_cpu_us_per_call"] - single
        print(
            f"in flight {a['in_flight']}: cluster mode on one node costs {more:.0f} µs more CPU per call "
            f"than a single server ({single:.0f} µs)"
        )
        # Half the calls cross nodes in the two-node layout: the extra cost is per crossing call.
        extra = (b["server_cpu_us_per_call"] + b["redis_cpu_us_per_call"]) - (
            a["server_cpu_us_per_call"] + a["redis_cpu_us_per_call"]
        )
        per_cross = extra * 2
        node_cost = b["server_cpu_us_per_call"]
        redis_cost = max(b["redis_cpu_us_per_call"], 1e-9)
        per_core = 1e6 / node_cost
        print(
            f"  cross-node overhead {per_cross:.0f} µs CPU per crossing call; one core carries "
            f"{per_core:.0f} calls/s of this traffic (node CPU {node_cost:.0f} µs/call); N nodes on N "
            f"cores: ~{per_core:.0f}·N calls/s until Redis (one core, {redis_cost:.0f} µs/call) "
            f"saturates at ~{1e6 / redis_cost:.0f} calls/s"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64])
    p.add_argument("--out", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "smcp-bench-cluster"))
    asyncio.run(amain(p.parse_args()))


if __name__ == "__main__":
    main()
