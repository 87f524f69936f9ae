"""Our server's ASGI app under a chosen host, for the hosting-swap tests.

Runs on the test interpreter::

    python host_server.py --hosting uvicorn|hypercorn|granian|fastapi-mount --token T [--mount /smcp-app]

- ``uvicorn``: ``smcp.server.asgi.create_app`` at the root, served by uvicorn;
- ``hypercorn``: the same app served by Hypercorn;
- ``granian``: the same app served by Granian's embedded server (Rust HTTP/WebSocket core); it
  binds the port itself, so a bound ``SO_REUSEPORT`` socket holds a free port until it listens;
- ``fastapi-mount``: a FastAPI app with its own routes (``GET /health``) and our server mounted
  at ``--mount`` (default ``/smcp-app``), served by uvicorn. Clients use the Engine.IO path
  ``<mount>/socket.io``.

The socket is bound on 127.0.0.1 port 0 before the host starts; once a probe request gets an
HTTP answer the script prints ``LISTENING <port> PATH <mount or />`` and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from typing import Any

MOUNT = "/smcp-app"


def build_app(hosting: str, token: str, mount: str) -> Any:
    from smcp.server import asgi
    from smcp.server.core import TokenAuth

    if hosting != "fastapi-mount":
        return asgi.create_app(auth=TokenAuth(token))
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    smcp_app: Any = None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        yield
        await smcp_app.shutdown()  # a mounted app gets no lifespan events of its own

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    smcp_app = asgi.mount(app, mount, auth=TokenAuth(token))
    return app


async def wait_until_answering(port: int, timeout: float = 20.0) -> None:
    """Poll until an HTTP request to the port gets a status line back (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
            writer.write(b"GET /__probe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 2)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if line.startswith(b"HTTP/"):
                return
        except (TimeoutError, OSError):
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"the host did not answer on port {port} within {timeout} s")
        await asyncio.sleep(0.05)


async def serve(args: argparse.Namespace) -> None:
    app = build_app(args.hosting, args.token, args.mount)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if args.hosting == "granian":
        from granian.constants import Interfaces
        from granian.server.embed import Server as GranianServer

        sock.close()
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        granian = GranianServer(
            app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False
        )
        host = asyncio.create_task(granian.serve())
        host.add_done_callback(lambda _: holder.close())
        stopper = asyncio.create_task(stop.wait())
        stopper.add_done_callback(lambda _: granian.stop())
    elif args.hosting == "hypercorn":
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"fd://{sock.fileno()}"]
        config.loglevel = "WARNING"
        config.graceful_timeout = 2
        host = asyncio.create_task(hypercorn_serve(app, config, shutdown_trigger=stop.wait))
    else:
        import uvicorn

        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
        )
        host = asyncio.create_task(server.serve(sockets=[sock]))

        async def stop_uvicorn() -> None:
            await stop.wait()
            server.should_exit = True

        stopper = asyncio.create_task(stop_uvicorn())
        host.add_done_callback(lambda _: stopper.cancel())

    waiter = asyncio.create_task(wait_until_answering(port))
    done, _ = await asyncio.wait({host, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if host in done:
        host.result()
        raise RuntimeError("the host stopped before it answered")
    waiter.result()
    path = args.mount if args.hosting == "fastapi-mount" else "/"
    sys.stdout.write(f"LISTENING {port} PATH {path}\n")
    sys.stdout.flush()
    await host


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--hosting", choices=["uvicorn", "hypercorn", "granian", "fastapi-mount"], required=True
    )
    parser.add_argument("--token", required=True)
    parser.add_argument("--mount", default=MOUNT)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
