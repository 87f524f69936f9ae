"""The Agent's and the Computer's python-socketio client (``smcp.core._socketio_internals``).

Both roles build their client with ``socketio_client``: python-socketio's ``AsyncClient`` on an
Engine.IO client whose WebSocket loops need no task per packet. These tests run it against a bare
python-socketio server on uvicorn and check that it behaves like python-engineio's own loops:
calls and acks, events with acks while a slow handler runs, binary payloads, the server going
away, a silent server, ``disconnect()``, and polling (which keeps python-engineio's loops).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import engineio
import pytest
import socketio

from smcp.core._socketio_internals import (
    TESTED_ENGINEIO,
    TESTED_SOCKETIO,
    ReadDeadline,
    client_class,
    socketio_client,
)
from smcp.testing.server import serve

pytestmark = pytest.mark.anyio


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2])


@pytest.mark.parametrize(
    ("distribution", "tested"), [("python-socketio", TESTED_SOCKETIO), ("python-engineio", TESTED_ENGINEIO)]
)
def test_installed_version_is_in_the_tested_range(
    distribution: str, tested: tuple[tuple[int, int], tuple[int, int]]
) -> None:
    low, high = tested
    installed = _version_tuple(version(distribution))
    assert low <= installed < high, (
        f"{distribution} {version(distribution)} is outside {tested}: re-check smcp.core._socketio_internals"
    )


def test_engineio_client_still_has_the_loops_we_replace() -> None:
    cls = engineio.AsyncClient
    for name in ("_read_loop_websocket", "_write_loop", "_receive_packet", "_trigger_event", "_reset"):
        assert inspect.iscoroutinefunction(getattr(cls, name)), name
    # what our loops save: python-engineio still waits through wait_for (a task per wait on 3.11)
    assert "wait_for" in inspect.getsource(cls._read_loop_websocket)
    assert "wait_for" in inspect.getsource(cls._write_loop)
    assert "run_async=True" in inspect.getsource(cls._receive_packet)
    assert callable(socketio.AsyncClient._engineio_client_class)


def test_the_client_uses_our_engine_and_packet_class() -> None:
    before = socketio.packet.Packet.json
    sio = socketio_client(handle_sigint=False)
    assert isinstance(sio, client_class())
    assert type(sio.eio).__name__ == "SMCPEngineClient"
    assert isinstance(sio.eio, engineio.AsyncClient)
    assert sio.packet_class.uses_binary_events is False
    # the codec is set on our packet class only, never process-wide
    assert socketio.packet.Packet.json is before
    assert sio.packet_class.json is not before


class _Server:
    """A bare python-socketio server: ``echo`` acks its argument, ``ask`` makes the server call
    the client's ``slow`` and ``fast`` events, ``drop`` disconnects the caller."""

    def __init__(self, ping: tuple[float, float] = (25, 20)) -> None:
        self.sio = socketio.AsyncServer(async_mode="asgi", ping_interval=ping[0], ping_timeout=ping[1])
        self.app = socketio.ASGIApp(self.sio)
        self.sio.on("echo", self._echo)
        self.sio.on("ask", self._ask)
        self.sio.on("drop", self._drop)
        self.sio.on("record", self._record)
        self.sio.on("invoke", self._invoke)
        self.seen: list[Any] = []

    async def _invoke(self, sid: str, data: Any) -> Any:
        try:
            return await self.sio.call(data["event"], data["arg"], to=sid, timeout=1)
        except socketio.exceptions.TimeoutError:
            return "no answer"

    async def _echo(self, sid: str, data: Any) -> Any:
        return data

    async def _ask(self, sid: str, data: Any) -> Any:
        slow = asyncio.ensure_future(self.sio.call("slow", data, to=sid, timeout=5))
        fast = await self.sio.call("fast", data, to=sid, timeout=5)
        return [fast, await slow]

    async def _record(self, sid: str, data: Any) -> None:
        self.seen.append(data)

    async def _drop(self, sid: str, data: Any) -> None:
        await self.sio.disconnect(sid)


@asynccontextmanager
async def _connected(
    server: _Server, transports: list[str] | None = None, **options: Any
) -> AsyncIterator[socketio.AsyncClient]:
    async with serve(server.app) as url:
        sio = socketio_client(handle_sigint=False, **options)
        async with asyncio.timeout(10):
            await sio.connect(url, transports=transports or ["websocket"], wait_timeout=5)
        try:
            yield sio
        finally:
            async with asyncio.timeout(10):
                await sio.disconnect()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_calls_are_answered_in_any_order(transport: str) -> None:
    # a short heartbeat ends the bare server's pending long-poll soon after the client has gone
    async with _connected(_Server(ping=(1, 1)), [transport]) as sio:
        assert sio.transport() == transport
        # 200 at once: on polling, more than python-engineio's server takes in one payload (16)
        replies = await asyncio.gather(*(sio.call("echo", {"n": i}, timeout=5) for i in range(200)))
        assert replies == [{"n": i} for i in range(200)]
        assert await sio.call("echo", ["ünïcode ✓", 2**70], timeout=5) == ["ünïcode ✓", 2**70]


async def test_a_slow_event_handler_does_not_hold_back_acks_or_other_events() -> None:
    release = asyncio.Event()
    order: list[str] = []
    async with _connected(_Server()) as sio:

        async def slow(data: Any) -> Any:
            order.append("slow started")
            await release.wait()
            order.append("slow released")
            return "slow done"

        async def fast(data: Any) -> Any:
            order.append("fast")
            return f"fast {data}"

        sio.on("slow", slow)
        sio.on("fast", fast)
        call = asyncio.ensure_future(sio.call("ask", 7, timeout=5))
        async with asyncio.timeout(5):
            while "fast" not in order or "slow started" not in order:
                await asyncio.sleep(0.01)
        # the fast event was answered while the slow handler still waits
        assert await sio.call("echo", "meanwhile", timeout=5) == "meanwhile"
        assert "slow released" not in order
        release.set()
        async with asyncio.timeout(5):
            assert await call == ["fast 7", "slow done"]


async def test_event_handlers_of_every_shape_are_answered(caplog: pytest.LogCaptureFixture) -> None:
    async with _connected(_Server()) as sio:

        def plain(data: Any) -> Any:  # not a coroutine function
            return {"plain": data}

        async def pair(data: Any) -> Any:
            return data, "second"  # a tuple: two ack arguments

        async def broken(data: Any) -> Any:
            raise RuntimeError("handler bug")

        async def everything(event: str, data: Any) -> Any:  # python-socketio's catch-all path
            return f"caught {event}"

        sio.on("plain", plain)
        sio.on("pair", pair)
        sio.on("broken", broken)
        sio.on("*", everything)

        async def invoke(event: str, arg: Any) -> Any:
            return await sio.call("invoke", {"event": event, "arg": arg}, timeout=5)

        assert await invoke("plain", 1) == {"plain": 1}
        assert await invoke("pair", 2) == (2, "second")
        assert await invoke("unregistered", 3) == "caught unregistered"
        with caplog.at_level("ERROR"):
            assert await invoke("broken", 4) == "no answer"  # as python-socketio: no ack
        assert any("handler bug" in (r.exc_text or "") or r.exc_info for r in caplog.records)
        assert await sio.call("echo", "still connected", timeout=5) == "still connected"


async def test_bytes_travel_as_attachments_both_ways() -> None:
    async with _connected(_Server()) as sio:
        blob = bytes(range(256)) * 10
        assert await sio.call("echo", {"blob": blob, "n": 1}, timeout=5) == {"blob": blob, "n": 1}


async def test_a_server_disconnect_ends_both_loops() -> None:
    async with _connected(_Server()) as sio:
        dropped = asyncio.Event()
        sio.on("disconnect", lambda *reason: dropped.set())
        eio = sio.eio
        await sio.emit("drop", {})
        async with asyncio.timeout(5):
            await dropped.wait()
            while eio.write_loop_task is not None or not eio.read_loop_task.done():
                await asyncio.sleep(0.01)
        assert not sio.connected  # the server said goodbye: python-socketio does not reconnect


async def test_a_dead_connection_is_noticed_and_the_client_reconnects() -> None:
    options = {"reconnection": True, "reconnection_delay": 0.1, "reconnection_delay_max": 0.2}
    async with _connected(_Server(), **options) as sio:
        gone = asyncio.Event()
        sio.on("disconnect", lambda *reason: gone.set())
        eio = sio.eio
        first = eio.sid
        eio.ws._response.connection.transport.abort()  # the socket dies under the client
        async with asyncio.timeout(5):
            await gone.wait()
            while not (sio.connected and eio.sid != first):
                await asyncio.sleep(0.02)
        assert await sio.call("echo", "back", timeout=5) == "back"


async def test_a_silent_server_is_given_up_after_the_heartbeat_deadline() -> None:
    server = _Server(ping=(0.5, 0.5))
    async with _connected(server) as sio:
        gone = asyncio.Event()
        sio.on("disconnect", lambda *reason: gone.set())
        server.sio.eio.sockets[sio.eio.sid].schedule_ping = lambda: None  # the server stops pinging
        started = time.monotonic()
        async with asyncio.timeout(10):
            await gone.wait()
        # the read deadline is ping_interval + ping_timeout from the last packet read
        assert 0.5 <= time.monotonic() - started <= 3.0


async def test_disconnect_is_prompt_and_leaves_no_loop_running() -> None:
    async with _connected(_Server()) as sio:
        eio = sio.eio
        for i in range(20):
            await sio.emit("echo", i)
        started = time.monotonic()
        await sio.disconnect()
        assert time.monotonic() - started < 2.0
        assert eio.state == "disconnected"
        assert eio.write_loop_task is None
        assert eio.read_loop_task.done()


async def test_packets_leave_in_the_order_they_were_sent() -> None:
    server = _Server()
    async with _connected(server) as sio:
        big = "x" * 300_000  # frames past aiohttp's buffer limit: some sends wait on drain
        await asyncio.gather(*(sio.emit("record", [i, big if i % 7 == 0 else ""]) for i in range(300)))
        async with asyncio.timeout(10):
            while len(server.seen) < 300:
                await asyncio.sleep(0.02)
        assert [n for n, _ in server.seen] == list(range(300))


async def test_an_idle_writer_outlives_engineios_writer_deadline() -> None:
    server = _Server(ping=(1, 1))  # past python-engineio's writer deadline: max(1, 1) + 5 s
    async with _connected(server) as sio:
        eio = sio.eio
        await asyncio.sleep(7.5)  # pongs went out as direct sends the whole time
        assert sio.connected and eio.write_loop_task is not None
        assert await sio.call("echo", "still here", timeout=5) == "still here"


async def test_read_deadline_cancels_only_a_read_that_waited_too_long() -> None:
    async def reader(wait: float, work: float) -> str:
        deadline = ReadDeadline(0.2)
        try:
            for _ in range(3):  # three quick reads, each followed by work longer than the deadline
                deadline.reading()
                await asyncio.sleep(0.05)
                deadline.read_done()
                await asyncio.sleep(work)  # not reading: the deadline waits
            deadline.reading()
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                return "deadline" if deadline.expired() else "cancelled from outside"
            deadline.read_done()
            return "read"
        finally:
            deadline.close()

    async with asyncio.timeout(10):
        assert await reader(wait=0.1, work=0.3) == "read"
        started = time.monotonic()
        assert await reader(wait=5, work=0.0) == "deadline"
        assert time.monotonic() - started < 1.5
        task = asyncio.ensure_future(reader(wait=5, work=0.0))
        await asyncio.sleep(0.16)
        task.cancel()
        assert await task == "cancelled from outside"
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_ack_arguments_answers_as_python_socketio_does(caplog: pytest.LogCaptureFixture) -> None:
    from smcp.core._socketio_internals import ack_arguments

    async def pair(a: int, b: int) -> tuple[int, int]:
        return a, b

    async def cancelled() -> None:
        raise asyncio.CancelledError

    def boom() -> None:
        raise RuntimeError("boom")

    log = logging.getLogger("test.ack")
    assert await ack_arguments(pair, (1, 2), "pair", log) == [1, 2]
    assert await ack_arguments(lambda x: {"x": x}, [3], "one", log) == [{"x": 3}]
    assert await ack_arguments(lambda: None, (), "none", log) == []
    assert await ack_arguments(cancelled, (), "cancelled", log) == []
    with caplog.at_level(logging.ERROR, logger="test.ack"):
        assert await ack_arguments(boom, (), "boom", log) is None
    assert "handler of boom raised" in caplog.text
