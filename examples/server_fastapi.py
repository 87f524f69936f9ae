"""An SMCP server inside a FastAPI application.

Needs FastAPI, which the SMCP packages do not bring: ``pip install fastapi "smcp-server-asgi[standard]"``.
The token comes from ``SMCP_TOKEN``; without it the example refuses to start (exit status 2).

Run:  SMCP_TOKEN=secret uvicorn examples.server_fastapi:app --port 8000
      (or: python examples/server_fastapi.py --port 0, which prints ``LISTENING <port>``)

Two ways to combine them are shown; this file uses the first:

1. SMCP in front: ``create_app(..., other_asgi_app=api)``. Socket.IO lives at ``/socket.io``,
   every other request goes to FastAPI, and FastAPI's lifespan still runs.
2. SMCP mounted under FastAPI: ``mount(api, "/smcp", auth=...)``; clients then use
   ``socketio_path="smcp/socket.io"``. Call ``await smcp_app.shutdown()`` in FastAPI's lifespan.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

try:
    from fastapi import FastAPI
except ImportError:
    sys.exit('examples/server_fastapi.py needs FastAPI: pip install fastapi "smcp-server-asgi[standard]"')

from smcp.server.asgi import create_app
from smcp.server.core import ServerSettings, SMCPServer, TokenAuth

TOKEN = os.environ.get("SMCP_TOKEN", "")
if not TOKEN:
    print("examples/server_fastapi.py: set SMCP_TOKEN to the token clients must present", file=sys.stderr)
    raise SystemExit(2)

server = SMCPServer(ServerSettings(grace=5.0), TokenAuth(TOKEN))


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    yield  # open/close your own resources here; the SMCP app shuts the server down itself


api = FastAPI(lifespan=lifespan)


@api.get("/offices/{office_id}")
async def office(office_id: str) -> dict[str, object]:
    """A REST view of who is in an office, read from the SMCP registry."""
    members = await server.registry.members(office_id)
    return {"office_id": office_id, "members": [{"name": m.name, "role": m.role} for m in members]}


app = create_app(server, other_asgi_app=api)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # -> TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    print(f"FastAPI + SMCP on http://{args.host}:{port}", flush=True)
    print(f"LISTENING {port}", flush=True)
    uvicorn.Server(uvicorn.Config(app, lifespan="on")).run(sockets=[sock])


if __name__ == "__main__":
    main()
