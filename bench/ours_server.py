"""Our server on a chosen uvicorn stack (the ``smcp-server`` command always takes uvicorn's ``auto``).

    python bench/ours_server.py --port 0 --token T --stack default|plain|standard
    python bench/ours_server.py --port 0 --token T --host-with granian

Builds the app exactly as ``smcp-server`` does (``create_app`` with default ``ServerSettings`` and
``TokenAuth``, lifespan on, logging at INFO on stderr with uvicorn's own loggers at WARNING, the
garbage collector tuned with ``tune_gc`` once it listens) and
runs it under uvicorn with the stack named by ``--stack`` (see relay_server.STACKS), so that
ours, the relay and the official server can be compared on the same stack.
``--host-with granian`` serves the same app with Granian's embedded server (its Rust HTTP and
WebSocket core, one worker in this process, on uvloop when installed, as Granian's ``--loop
auto``). Prints ``LISTENING <port>`` once it accepts connections. uvicorn runs the WebSocket
protocol of ``uvicorn_ws_protocol``, as ``smcp-server`` does; ``SMCP_AB_PLAIN_WS=1`` in the
environment runs uvicorn's own instead (for A/B runs).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys

from common import raise_nofile
from relay_server import STACKS


async def serve(host: str, port: int, token: str, stack: str) -> None:
    import uvicorn

    from smcp.server.asgi import create_app, tune_gc, uvicorn_ws_protocol
    from smcp.server.core import ServerSettings, TokenAuth

    settings = ServerSettings()
    app = create_app(settings=settings, auth=TokenAuth(token))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio: TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    options = dict(STACKS[stack])
    if not os.environ.get("SMCP_AB_PLAIN_WS"):
        options["ws"] = uvicorn_ws_protocol(options.get("ws", "auto"))  # as smcp-server runs it
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        ws_max_size=settings.effective_transport_limit + 64 * 1024,
        timeout_graceful_shutdown=2,
        server_header=False,
        **options,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    for _ in range(2000):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if server.started:
        tune_gc()  # as smcp-server does after start-up
        print(f"LISTENING {sock.getsockname()[1]}", flush=True)
    await task


def reserve_port(host: str) -> socket.socket:
    """A bound (not listening) ``SO_REUSEPORT`` socket holding a free port until Granian listens on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock


async def wait_answering(host: str, port: int, timeout: float = 20.0) -> None:
    """Until an HTTP request to ``port`` gets a status line back (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            writer.write(b"GET /__probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            line = await asyncio.wait_for(reader.readline(), 2)
            writer.close()
            if line.startswith(b"HTTP/"):
                return
        except (TimeoutError, OSError):
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"granian did not answer on port {port} within {timeout} s")


async def serve_granian(host: str, token: str) -> None:
    from granian.constants import Interfaces
    from granian.server.embed import Server

    from smcp.server.asgi import create_app, tune_gc
    from smcp.server.core import ServerSettings, TokenAuth

    app = create_app(settings=ServerSettings(), auth=TokenAuth(token))
    holder = reserve_port(host)
    port = holder.getsockname()[1]
    server = Server(app, address=host, port=port, interface=Interfaces.ASGI, backlog=4096, log_enabled=False)
    task = asyncio.ensure_future(server.serve())
    try:
        await wait_answering(host, port)
    finally:
        holder.close()
    tune_gc()
    print(f"LISTENING {port}", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    await task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default="bench-secret")
    ap.add_argument("--stack", choices=sorted(STACKS), default="default")
    ap.add_argument("--host-with", choices=["uvicorn", "granian"], default="uvicorn")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("ours_server: loopback only")
    raise_nofile()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.host_with == "granian":
        try:  # what Granian's own command does with its default --loop auto
            import uvloop
        except ImportError:
            asyncio.run(serve_granian(args.host, args.token))
        else:
            uvloop.run(serve_granian(args.host, args.token))
        return
    coro = serve(args.host, args.port, args.token, args.stack)
    if args.stack == "standard":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
