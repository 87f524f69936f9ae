"""uvicorn's WebSocket protocol as ``smcp-server`` runs it: reading pauses by queue length."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio import client as websockets_client

from smcp.server.asgi import uvicorn_ws_protocol
from smcp.server.asgi._uvicorn import TESTED_UVICORN, _Mailbox, _version
from smcp.testing.server import serve

pytestmark = pytest.mark.anyio


class _Echo:
    """An ASGI app that echoes every text message once ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await self.gate.wait()
            await send({"type": "websocket.send", "text": message["text"]})


def _counting(base: type[Any], pauses: list[int]) -> type[Any]:
    class Counting(base):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: Any) -> None:
            pause = transport.pause_reading

            def counted() -> None:
                pauses.append(1)
                pause()

            transport.pause_reading = counted
            super().connection_made(transport)

    return Counting


@asynccontextmanager
async def _serving(app: _Echo, protocol: type[Any]) -> AsyncIterator[str]:
    async with serve(app, ws=protocol, lifespan="off", loop="asyncio") as url:
        yield "ws" + url.removeprefix("http") + "/"


async def _ping_pong(url: str, count: int) -> None:
    async with websockets_client.connect(url) as ws:
        for i in range(count):
            await ws.send(f"m{i}")
            assert await asyncio.wait_for(ws.recv(), 5) == f"m{i}"


async def test_the_sans_io_protocol_is_replaced_and_other_choices_pass_through() -> None:
    ours = uvicorn_ws_protocol("websockets-sansio")
    assert isinstance(ours, type) and issubclass(ours, WebSocketsSansIOProtocol)
    assert ours is not WebSocketsSansIOProtocol
    assert uvicorn_ws_protocol(WebSocketsSansIOProtocol) is ours  # one class per base
    assert uvicorn_ws_protocol("auto") is ours  # websockets is a dependency, so auto picks it
    assert uvicorn_ws_protocol("wsproto") == "wsproto"
    assert uvicorn_ws_protocol("none") == "none"
    assert uvicorn_ws_protocol("no.such:module") == "no.such:module"


async def test_outside_the_tested_uvicorn_versions_its_own_protocol_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    low, high = TESTED_UVICORN
    installed = uvicorn.__version__
    assert low <= _version(installed) < high, f"uvicorn {installed}: check _uvicorn.py, then widen the range"
    monkeypatch.setattr(uvicorn, "__version__", f"{high[0]}.{high[1]}.0")
    assert uvicorn_ws_protocol("websockets-sansio") == "websockets-sansio"


async def test_small_messages_do_not_pause_reading() -> None:
    pauses: list[int] = []
    async with _serving(_Echo(), _counting(uvicorn_ws_protocol("websockets-sansio"), pauses)) as url:
        await _ping_pong(url, 50)
    assert pauses == []
    # the control: uvicorn's own protocol pauses after every message it queues
    async with _serving(_Echo(), _counting(WebSocketsSansIOProtocol, pauses)) as url:
        await _ping_pong(url, 50)
    assert len(pauses) >= 50


async def test_a_slow_app_still_stops_the_client_and_nothing_is_lost() -> None:
    pauses: list[int] = []
    app = _Echo()
    app.gate.clear()
    protocol = _counting(uvicorn_ws_protocol("websockets-sansio"), pauses)
    async with _serving(app, protocol) as url, websockets_client.connect(url) as ws:
        for i in range(200):
            await ws.send(f"m{i}")
        async with asyncio.timeout(10):
            while not pauses:
                await asyncio.sleep(0.01)
        app.gate.set()
        echoed = [await asyncio.wait_for(ws.recv(), 5) for _ in range(200)]
    assert echoed == [f"m{i}" for i in range(200)]
    assert len(pauses) < 200


async def test_a_large_message_pauses_reading_as_uvicorn_does() -> None:
    pauses: list[int] = []
    big = "x" * (200 * 1024)
    protocol = _counting(uvicorn_ws_protocol("websockets-sansio"), pauses)
    async with _serving(_Echo(), protocol) as url, websockets_client.connect(url) as ws:
        await ws.send(big)
        assert await asyncio.wait_for(ws.recv(), 5) == big
    assert len(pauses) == 1


async def test_the_mailbox_hands_messages_out_in_order_one_per_waiting_get() -> None:
    box = _Mailbox(asyncio.get_running_loop())
    first, second = asyncio.ensure_future(box.get()), asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    assert box.empty() and not first.done()
    box.put_nowait("a")
    box.put_nowait("b")
    box.put_nowait("c")
    assert box.qsize() == 3
    async with asyncio.timeout(5):
        assert (await first, await second) == ("a", "b")
        assert await box.get() == "c"
    assert box.empty() and box.qsize() == 0


async def test_a_get_cancelled_after_its_wake_up_passes_the_message_on() -> None:
    box = _Mailbox(asyncio.get_running_loop())
    first, second = asyncio.ensure_future(box.get()), asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    box.put_nowait("m")  # wakes the first get ...
    first.cancel()  # ... which is cancelled before it runs
    async with asyncio.timeout(5):
        assert await second == "m"
    assert first.cancelled() and box.empty()
    late = asyncio.ensure_future(box.get())  # a get cancelled while it waits leaves nothing behind
    await asyncio.sleep(0)
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    box.put_nowait("n")
    async with asyncio.timeout(5):
        assert await box.get() == "n"
