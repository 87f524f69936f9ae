"""The bare relay: the floor of the stack (python-socketio + uvicorn with no SMCP logic).

    python bench/relay_server.py --port 0 --token T [--stack plain|standard]

It does the wire-visible work of an SMCP server and nothing else: token check on connect;
``server:join_office`` enters the room, remembers name -> sid, announces ``notify:enter_office``
to the room and acks ``(True, None)``; ``notify:leave_office`` on disconnect; ``client:*`` is
forwarded with ``AsyncServer.call`` to the named Computer and its ack returned as is;
``server:update_*`` is re-broadcast to the room as ``notify:update_*``. No validation, no
version gate, no per-office name scoping. Prints ``LISTENING <port>`` once it accepts connections.

``--stack default`` is asyncio + h11 + websockets (what ``pip install smcp-server-asgi`` runs);
``plain`` is asyncio + h11 + wsproto (a bare ``pip install uvicorn`` with python-socketio, and what
the official virtualenv runs); ``standard`` is uvloop + httptools + websockets (``uvicorn[standard]``).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from typing import Any

import socketio
from common import raise_nofile

NS = "/smcp"
# "standard": what uvicorn[standard]'s auto choice is (its legacy "websockets" protocol is deprecated)
STACKS = {
    "default": {"loop": "asyncio", "http": "h11", "ws": "websockets-sansio"},
    "plain": {"loop": "asyncio", "http": "h11", "ws": "wsproto"},
    "standard": {"loop": "uvloop", "http": "httptools", "ws": "websockets-sansio"},
}


def build_relay(token: str) -> Any:
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
    name_to_sid: dict[str, str] = {}
    sessions: dict[str, tuple[str, str, str]] = {}  # sid -> (role, name, office)

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        return isinstance(auth, dict) and auth.get("token") == token

    async def disconnect(sid: str, *args: Any) -> None:
        st = sessions.pop(sid, None)
        if st is not None:
            if name_to_sid.get(st[1]) == sid:
                del name_to_sid[st[1]]
            payload = {"office_id": st[2], st[0]: st[1]}
            await sio.emit("notify:leave_office", payload, room=st[2], skip_sid=sid, namespace=NS)

    async def join(sid: str, data: dict[str, Any]) -> tuple[bool, None]:
        role, name, office = data["role"], data["name"], data["office_id"]
        sessions[sid] = (role, name, office)
        name_to_sid[name] = sid
        await sio.enter_room(sid, office, namespace=NS)
        payload = {"office_id": office, role: name}
        await sio.emit("notify:enter_office", payload, room=office, skip_sid=sid, namespace=NS)
        return True, None

    async def forward(event: str, data: dict[str, Any]) -> Any:
        target = name_to_sid.get(data.get("computer", ""))
        if target is None:
            return {"code": 404, "message": "computer not found"}
        return await sio.call(event, data, to=target, namespace=NS, timeout=data.get("timeout") or 60)

    async def tool_call(sid: str, data: dict[str, Any]) -> Any:
        return await forward("client:tool_call", data)

    async def other(event: str, sid: str, data: Any = None) -> Any:
        if event.startswith("client:"):
            return await forward(event, data)
        if event.startswith("server:update_"):
            st = sessions.get(sid)
            if st is not None:
                await sio.emit("notify:" + event[7:], data, room=st[2], skip_sid=sid, namespace=NS)
        return None

    for event, handler in (
        ("connect", connect),
        ("disconnect", disconnect),
        ("server:join_office", join),
        ("client:tool_call", tool_call),
        ("*", other),
    ):
        sio.on(event, handler, namespace=NS)
    return socketio.ASGIApp(sio, socketio_path="/socket.io")


async def serve(app: Any, host: str, port: int, stack: str) -> None:
    """Run ``app`` under uvicorn on a pre-bound socket and print ``LISTENING <port>``."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio: TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        **STACKS[stack],  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        for _ in range(2000):
            if server.started:
                print(f"LISTENING {sock.getsockname()[1]}", flush=True)
                return
            await asyncio.sleep(0.01)
        print("relay: uvicorn did not start within 20 s", file=sys.stderr, flush=True)

    task = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        task.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default="bench-secret")
    ap.add_argument("--stack", choices=sorted(STACKS), default="default")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("relay: loopback only")
    raise_nofile()
    app = build_relay(args.token)
    if args.stack == "standard":
        import uvloop

        uvloop.run(serve(app, args.host, args.port, args.stack))
    else:
        asyncio.run(serve(app, args.host, args.port, args.stack))


if __name__ == "__main__":
    main()
