"""The wire floor of the full stack's four hops: raw asyncio TCP, three processes, concurrency 1.

    python bench/tcp_chain.py [--calls 3000] [--repeat 3] [--size 64]

An "agent" sends one line to a "server", which writes it to a "computer", which writes it back
through the server to the agent: Agent → Server → Computer → Server → Agent, the hops of a tool
call, with no WebSocket, Engine.IO or Socket.IO at either end and ``TCP_NODELAY`` on every socket.
Prints the p50 and p90 round trip of each repeat. A diagnostic, not part of ``run.py``: compare it
with ``latency_c1`` and the full stack's gap over MCP-direct measured on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time


def _nodelay(writer: asyncio.StreamWriter) -> None:
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def server() -> None:
    computer: asyncio.StreamWriter | None = None
    agent: asyncio.StreamWriter | None = None
    ready = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal computer, agent
        _nodelay(writer)
        role = await reader.readline()
        if role == b"computer\n":
            computer = writer
            ready.set()
            while line := await reader.readline():
                assert agent is not None
                agent.write(line)
        else:
            agent = writer
            await ready.wait()
            while line := await reader.readline():
                assert computer is not None
                computer.write(line)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()


async def computer(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    _nodelay(writer)
    writer.write(b"computer\n")
    while line := await reader.readline():
        writer.write(line)


async def agent(port: int, calls: int, size: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    _nodelay(writer)
    writer.write(b"agent\n")
    message = b"x" * (size - 1) + b"\n"
    lat: list[float] = []
    for i in range(calls + 300):
        t0 = time.perf_counter()
        writer.write(message)
        await asyncio.wait_for(reader.readline(), 10)
        if i >= 300:  # warm-up
            lat.append((time.perf_counter() - t0) * 1e3)
    writer.close()
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=["driver", "server", "computer"], default="driver")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    if args.role == "server":
        asyncio.run(server())
        return
    if args.role == "computer":
        asyncio.run(computer(args.port))
        return
    me = [sys.executable, __file__]
    for rep in range(1, args.repeat + 1):
        srv = subprocess.Popen([*me, "--role", "server"], stdout=subprocess.PIPE, text=True)
        comp = None
        try:
            assert srv.stdout is not None
            port = int(srv.stdout.readline())
            comp = subprocess.Popen([*me, "--role", "computer", "--port", str(port)])
            time.sleep(0.3)  # the computer registers before the agent's first line
            lat = asyncio.run(agent(port, args.calls, args.size))
        finally:
            for p in (comp, srv):
                if p is not None:
                    p.kill()
                    p.wait(5)
        p50, p90 = statistics.median(lat), statistics.quantiles(lat, n=10)[-1]
        hops = f"round trip p50 {p50:.3f} ms, p90 {p90:.3f} ms ({len(lat)} calls)"
        print(f"repeat {rep}: four raw TCP hops, {hops}")


if __name__ == "__main__":
    main()
