"""A real Socket.IO server on 127.0.0.1 playing "server + Computer" for the Agent's tests.

``fake_server`` runs python-socketio's ASGI server under uvicorn on a pre-bound port-0 socket,
behind the version gate from smcp-core. Tests script its answers per event
(``server.replies["client:get_tools"] = fn``), read what it received (``server.received``),
push notifications (``await server.notify(...)``) and drop connections (``await server.kick()``).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
import socketio
import uvicorn

from smcp.core.versioning import check_version

NS = "/smcp"
Reply = Callable[[dict[str, Any]], Any]


def _gate(app: Any, server: FakeServer) -> Any:
    async def gated(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].startswith("/socket.io"):
            query = parse_qs(scope.get("query_string", b"").decode())
            rejection = check_version((query.get("a2c_version") or [None])[0], server.gate_version)
            if rejection is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4900})
                    return
                await send(
                    {"type": "http.response.start", "status": 400, "headers": rejection.http_headers()}
                )
                await send({"type": "http.response.body", "body": rejection.body_bytes()})
                return
        await app(scope, receive, send)

    return gated


@dataclass
class FakeServer:
    sio: socketio.AsyncServer
    port: int = 0
    token: str = "T"
    gate_version: str = "0.4.0"
    replies: dict[str, Reply] = field(default_factory=dict)
    received: list[tuple[str, Any]] = field(default_factory=list)
    connects: list[dict[str, Any]] = field(default_factory=list)
    sids: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self, name: str) -> list[Any]:
        return [data for event, data in self.received if event == name]

    async def notify(self, event: str, data: dict[str, Any]) -> None:
        for sid in list(self.sids):
            await self.sio.emit(event, data, to=sid, namespace=NS)

    async def kick(self) -> None:
        for sid in list(self.sids):
            await self.sio.disconnect(sid, namespace=NS)


def _default_replies() -> dict[str, Reply]:
    def join(data: dict[str, Any]) -> Any:
        return (True, None)

    def list_room(data: dict[str, Any]) -> Any:
        return {
            "sessions": [
                {"sid": "s1", "name": data["agent"], "role": "agent", "office_id": data["office_id"]},
                {"sid": "s2", "name": "c1", "role": "computer", "office_id": data["office_id"]},
            ],
            "req_id": data["req_id"],
        }

    def tools(data: dict[str, Any]) -> Any:
        return {
            "tools": [
                {
                    "name": "tb__echo",
                    "bundle_id": "tb",
                    "description": "Echo text",
                    "params_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
                    "return_schema": None,
                }
            ],
            "req_id": data["req_id"],
        }

    def config(data: dict[str, Any]) -> Any:
        return {"servers": {}, "inputs": []}

    def skills(data: dict[str, Any]) -> Any:
        return {"skills": [], "req_id": data["req_id"]}

    def echo(data: dict[str, Any]) -> Any:
        text = data["params"].get("text", "")
        return {"meta": None, "content": [{"type": "text", "text": text}], "isError": False}

    return {
        "server:join_office": join,
        "server:leave_office": join,
        "server:list_room": list_room,
        "client:get_tools": tools,
        "client:get_config": config,
        "client:get_skills": skills,
        "client:tool_call": echo,
    }


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeServer]:
    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
    server = FakeServer(sio)
    server.replies.update(_default_replies())

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> bool:
        server.connects.append({"auth": auth, "environ": environ})
        if not isinstance(auth, dict) or auth.get("token") != server.token:
            raise socketio.exceptions.ConnectionRefusedError({"message": "Connection refused by server"})
        server.sids.append(sid)
        return True

    async def disconnect(sid: str, *args: Any) -> None:
        if sid in server.sids:
            server.sids.remove(sid)

    async def any_event(event: str, sid: str, data: Any = None) -> Any:
        server.received.append((event, data))
        reply = server.replies.get(event)
        if reply is None:
            return None
        value = reply(data)
        if inspect.isawaitable(value):
            value = await value
        return value

    sio.on("connect", connect, namespace=NS)
    sio.on("disconnect", disconnect, namespace=NS)
    sio.on("*", any_event, namespace=NS)

    async def start() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", server.port))
        server.port = sock.getsockname()[1]
        config = uvicorn.Config(_gate(socketio.ASGIApp(sio), server), log_level="warning", lifespan="off")
        uv = uvicorn.Server(config)
        task = asyncio.create_task(uv.serve(sockets=[sock]))
        for _ in range(250):
            if uv.started:
                break
            await asyncio.sleep(0.02)
        assert uv.started, "uvicorn did not start"
        running[:] = [(uv, task, sock)]

    async def stop() -> None:
        for uv, task, sock in running:
            uv.should_exit = True
            uv.force_exit = True
            await asyncio.wait_for(task, 10)
            sock.close()
        running.clear()
        server.sids.clear()

    async def restart() -> None:
        await stop()
        await start()

    running: list[tuple[uvicorn.Server, asyncio.Task[None], socket.socket]] = []
    server.restart = restart  # type: ignore[attr-defined]
    server.stop = stop  # type: ignore[attr-defined]
    await start()
    try:
        yield server
    finally:
        await stop()
