"""create_app: the HTTP side, wrapping and mounting in Starlette/FastAPI, lifespan, hypercorn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import socketio
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from smcp.server.asgi import create_app, mount
from smcp.server.core import ServerSettings, TokenAuth
from smcp.testing.server import TOKEN, Peer, serve

pytestmark = pytest.mark.anyio


def _no_constants(name: str) -> None:
    raise AssertionError(f"not JSON: {name}")


async def _hello(request: Any) -> PlainTextResponse:
    return PlainTextResponse("hello from starlette")


async def _roundtrip(
    url: str, socketio_path: str = "socket.io", transport: str = "websocket", server: Any = None
) -> None:
    agent = Peer(url)
    await agent.sio.connect(
        f"{url}?a2c_version=0.4.0",
        auth={"token": TOKEN},
        namespaces=["/smcp"],
        transports=[transport] if transport == "websocket" else ["polling"],
        socketio_path=socketio_path,
        wait_timeout=5,
    )
    try:
        assert await agent.join("agent", "a", "o1") == (True, None)
        room = await agent.call("server:list_room", {"agent": "a", "req_id": "1", "office_id": "o1"})
        assert room[0]["sessions"][0]["name"] == "a"
    finally:
        if transport == "polling":
            # A polling client's own disconnect waits for its long-poll; end it from the server.
            await server.sio.disconnect(agent.sio.get_sid("/smcp"), namespace="/smcp")
            await asyncio.wait_for(agent.sio.eio.disconnect(abort=True), 5)
        await agent.close()


async def test_http_endpoints_and_gate() -> None:
    app = create_app(auth=TokenAuth(TOKEN))
    async with serve(app) as url:
        await _roundtrip(url)
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{url}/healthz")).json() == {"status": "ok"}
            assert (await http.get(f"{url}/readyz")).status_code == 200
            metrics = await http.get(f"{url}/metrics")
            assert metrics.headers["content-type"].startswith("text/plain")
            assert "smcp_connections_total 1" in metrics.text
            assert "smcp_joins_total 1" in metrics.text
            assert 'smcp_relay_latency_seconds_bucket{le="+Inf"}' in metrics.text
            as_json = await http.get(f"{url}/metrics?format=json")
            assert "Infinity" not in as_json.text
            snapshot = json.loads(as_json.text, parse_constant=_no_constants)
            assert snapshot["relay_latency"]["buckets"][-1] == ["+Inf", 0]
            assert snapshot["joins_total"] == 1
            assert (await http.get(f"{url}/nothing")).status_code == 404
            gate = await http.get(f"{url}/socket.io/?EIO=4&transport=polling&a2c_version=0.5.0")
            assert gate.status_code == 400
            assert gate.headers["x-a2c-error-code"] == "4008"
            assert snapshot["version_rejections_total"] == 0
            assert "smcp_version_rejections_total 1" in (await http.get(f"{url}/metrics")).text
        await app.shutdown()
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{url}/readyz")).status_code == 503


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_custom_engineio_path(transport: str) -> None:
    app = create_app(auth=TokenAuth(TOKEN), path="/rt/sio")
    async with serve(app) as url:
        await _roundtrip(url, "rt/sio", transport, app.server)
        async with httpx.AsyncClient(timeout=10) as http:
            missing = await http.get(f"{url}/rt/sio/?EIO=4&transport=polling")
            assert missing.json() == {"code": 400, "message": "Missing a2c_version query parameter"}
            assert (await http.get(f"{url}/socket.io/?EIO=4&transport=polling")).status_code == 404


async def test_wraps_a_starlette_app_and_runs_its_lifespan() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        events.append("start")
        yield
        events.append("stop")

    user = Starlette(routes=[Route("/hello", _hello)], lifespan=lifespan)
    app = create_app(auth=TokenAuth(TOKEN), other_asgi_app=user)
    async with serve(app) as url:
        await _roundtrip(url)
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{url}/hello")).text == "hello from starlette"
            assert (await http.get(f"{url}/healthz")).status_code == 200
        assert events == ["start"]
    assert events == ["start", "stop"]
    assert app.server.closing


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_mounted_inside_starlette_at_a_sub_path(transport: str) -> None:
    user = Starlette(routes=[Route("/hello", _hello)])
    smcp_app = mount(user, "/smcp-rt", auth=TokenAuth(TOKEN))
    async with serve(user) as url:
        await _roundtrip(url, "smcp-rt/socket.io", transport, smcp_app.server)
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{url}/hello")).status_code == 200
            assert (await http.get(f"{url}/smcp-rt/healthz")).json() == {"status": "ok"}
            old = await http.get(f"{url}/smcp-rt/socket.io/?EIO=4&transport=polling&a2c_version=0.3.0")
            assert old.headers["x-a2c-error-code"] == "4008"
    await smcp_app.shutdown()


async def test_starlette_mount_route_object() -> None:
    smcp_app = create_app(auth=TokenAuth(TOKEN))
    user = Starlette(routes=[Mount("/deep/er", app=smcp_app)])
    async with serve(user) as url:
        await _roundtrip(url, "deep/er/socket.io")


async def test_runs_under_hypercorn() -> None:
    from hypercorn.asyncio import serve as hyper_serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    app = create_app(auth=TokenAuth(TOKEN))
    stop = asyncio.Event()
    task = asyncio.ensure_future(hyper_serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        url = f"http://127.0.0.1:{port}"
        async with asyncio.timeout(10):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    async with httpx.AsyncClient(timeout=2) as http:
                        if (await http.get(f"{url}/healthz")).status_code == 200:
                            break
                await asyncio.sleep(0.05)
        await _roundtrip(url)
        await _roundtrip(url, transport="polling", server=app.server)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


@pytest.mark.parametrize("extension", [True, False])
async def test_websocket_first_rejection(extension: bool) -> None:
    """With websocket.http.response the 400 body goes out; without it the close code is 4900."""
    app = create_app(auth=TokenAuth(TOKEN))
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "websocket",
        "path": "/socket.io/",
        "query_string": b"EIO=4&transport=websocket&a2c_version=0.3.0",
        "headers": [],
        "extensions": {"websocket.http.response": {}} if extension else {},
    }
    await app(scope, receive, send)
    if extension:
        assert sent[0]["type"] == "websocket.http.response.start"
        assert sent[0]["status"] == 400
        assert (b"x-a2c-error-code", b"4008") in sent[0]["headers"]
        assert b'"code": 4008' in sent[1]["body"]
    else:
        assert sent == [{"type": "websocket.close", "code": 4900}]


async def test_websocket_first_rejection_over_the_network() -> None:
    import websockets

    app = create_app(auth=TokenAuth(TOKEN))
    async with serve(app) as url:
        ws_url = url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket&a2c_version=0.3.0"
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            async with websockets.connect(ws_url, open_timeout=5):
                pass
        response = info.value.response
        assert response.status_code == 400
        assert response.headers["x-a2c-error-code"] == "4008"
        assert b'"client_version": "0.3.0"' in response.body


def test_create_app_refuses_ambiguous_arguments() -> None:
    from smcp.server.core import SMCPServer

    server = SMCPServer(ServerSettings(), TokenAuth(TOKEN))
    with pytest.raises(TypeError):
        create_app(server, auth=TokenAuth("x"))
    assert isinstance(server.sio, socketio.AsyncServer)
    assert server.sio.async_mode == "asgi"
