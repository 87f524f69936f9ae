"""The official a2c-smcp 0.4.2 async server, composed the way docs/protocol.md §5.10 describes it.

Runs inside the official venv::

    python official_server.py --host 127.0.0.1 --port 0 --token T

``socketio.AsyncServer(async_mode="asgi")`` + ``SMCPNamespace(DefaultAuthenticationProvider(admin_secret=T))``
+ ``A2CProtocolVersionASGIMiddleware(socketio.ASGIApp(...))`` under uvicorn. The socket is bound
before uvicorn starts, so ``--port 0`` works; ``LISTENING <port>`` is printed once uvicorn accepts
connections.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from official_common import emit_line, import_official

SOCKETIO_PATH = "/socket.io"


def build_app(token: str) -> object:
    a2c_smcp = import_official()
    import socketio
    from a2c_smcp.server import A2CProtocolVersionASGIMiddleware, DefaultAuthenticationProvider, SMCPNamespace

    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
    sio.register_namespace(SMCPNamespace(DefaultAuthenticationProvider(admin_secret=token)))
    inner = socketio.ASGIApp(sio, socketio_path=SOCKETIO_PATH)
    return A2CProtocolVersionASGIMiddleware(
        inner, socketio_path=SOCKETIO_PATH, server_version=a2c_smcp.PROTOCOL_VERSION
    )


async def serve(app: object, host: str, port: int) -> None:
    import uvicorn

    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        for _ in range(2000):  # bounded: 20 s
            if server.started:
                emit_line(f"LISTENING {bound_port}")
                return
            await asyncio.sleep(0.01)
        sys.stderr.write("official_server: uvicorn did not start within 20 s\n")

    announcer = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        announcer.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("official_server: refusing to bind anything but loopback")
    asyncio.run(serve(build_app(args.token), args.host, args.port))


if __name__ == "__main__":
    main()
