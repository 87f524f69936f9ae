"""python-socketio internals the server relies on (all of them in ``_socketio_internals``).

These fail loudly when python-socketio is upgraded past the tested range or changes what we use:
re-check each use, then widen ``TESTED_SOCKETIO``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import types
from importlib.metadata import version
from typing import Any

import pytest
import socketio
from socketio import base_server, packet

from smcp.server.core import ServerSettings
from smcp.server.core._socketio_internals import (
    TESTED_ENGINEIO,
    TESTED_SOCKETIO,
    RawHeader,
    _timer_poll_class,
    forget_ack,
    forget_callback,
    is_default_manager,
    packet_class,
    raw_header,
    send_event_with_ack,
    use_timer_poll,
)
from smcp.testing.server import running


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2])


@pytest.mark.parametrize(
    ("distribution", "tested", "where"),
    [
        (
            "python-socketio",
            TESTED_SOCKETIO,
            "every function of _socketio_internals.py",
        ),
        ("python-engineio", TESTED_ENGINEIO, "use_timer_poll and drop_connections in _socketio_internals.py"),
    ],
)
def test_installed_version_is_in_the_tested_range(
    distribution: str, tested: tuple[tuple[int, int], tuple[int, int]], where: str
) -> None:
    installed = _version_tuple(version(distribution))
    low, high = tested
    assert low <= installed < high, (
        f"{distribution} {version(distribution)} is outside the tested range {tested}: re-check {where}"
    )


def test_engineio_socket_still_takes_packets_through_poll() -> None:
    from engineio import async_socket, base_socket

    assert inspect.iscoroutinefunction(async_socket.AsyncSocket.poll)
    assert "self.poll()" in inspect.getsource(async_socket.AsyncSocket._websocket_handler)
    assert "self.poll()" in inspect.getsource(async_socket.AsyncSocket.handle_get_request)
    assert "self.queue = self.server.create_queue()" in inspect.getsource(base_socket.BaseSocket)
    assert "self.eio.on('connect', self._handle_eio_connect)" in inspect.getsource(base_server.BaseServer)


def _poll_socket(cls: type[Any]) -> Any:
    sock = object.__new__(cls)
    sock.queue = asyncio.Queue()
    sock.server = types.SimpleNamespace(ping_interval=5.0, ping_timeout=0.0)
    sock.upgraded = True  # the WebSocket writer's poll
    return sock


async def _poll_script(sock: Any) -> list[Any]:
    from engineio.exceptions import QueueEmpty

    seen: list[Any] = []
    for item in ("a", "b", None, "c"):
        sock.queue.put_nowait(item)
    seen += [await sock.poll(), await sock.poll(), await sock.poll()]
    waiter = asyncio.ensure_future(sock.poll())
    await asyncio.sleep(0)
    sock.queue.put_nowait("d")
    seen.append(await waiter)
    waiter = asyncio.ensure_future(sock.poll())
    await asyncio.sleep(0)
    waiter.cancel()
    try:
        await waiter
    except QueueEmpty:
        seen.append("QueueEmpty after cancel")
    sock.server.ping_interval = 0.01
    try:
        await sock.poll()
    except QueueEmpty:
        seen.append("QueueEmpty after timeout")
    seen.append(sock.queue.empty())
    return seen


@pytest.mark.anyio
async def test_timer_poll_behaves_like_engineio_poll() -> None:
    from engineio import async_socket

    ours = await _poll_script(_poll_socket(_timer_poll_class(async_socket.AsyncSocket)))
    theirs = await _poll_script(_poll_socket(async_socket.AsyncSocket))
    assert ours == theirs
    assert ours[:4] == [["a", "b"], ["c"], [], ["d"]]
    assert ours[4:] == ["QueueEmpty after cancel", "QueueEmpty after timeout", True]


@pytest.mark.anyio
async def test_every_connection_uses_the_timer_poll() -> None:
    async with running(ServerSettings()) as h:
        await h.agent()
        await h.computer()
        sockets = list(h.server.sio.eio.sockets.values())
        assert len(sockets) == 2
        assert all(type(s).__name__ == "SMCPSocket" for s in sockets)
    use_timer_poll(types.SimpleNamespace(sockets={}), "gone")


def test_every_engineio_packet_is_queued_through_socket_send() -> None:
    from engineio import async_server, async_socket

    assert "await socket.send(pkt)" in inspect.getsource(async_server.AsyncServer.send_packet)
    assert "await self.queue.put(pkt)" in inspect.getsource(async_socket.AsyncSocket.send)


@pytest.mark.anyio
async def test_output_limit_drops_a_connection_that_stops_reading() -> None:
    from engineio import packet as eio_packet

    settings = ServerSettings(max_message_size=1024, output_limit=4096)
    async with running(settings) as h:
        peer = await h.agent()
        [sock] = h.server.sio.eio.sockets.values()
        stuck = asyncio.get_running_loop().create_future()
        sock.smcp_tail = stuck  # a write waiting for the transport, as when the client stops reading
        for _ in range(3):  # no await yields to the writer in between: they stay queued
            await sock.send(eio_packet.Packet(eio_packet.MESSAGE, data="4" + "x" * 999))
        assert sock.smcp_queued == 3000
        assert h.server.metrics.slow_consumer_drops_total == 0
        for _ in range(2):
            await sock.send(eio_packet.Packet(eio_packet.MESSAGE, data="4" + "x" * 999))
        assert h.server.metrics.slow_consumer_drops_total == 1
        assert sock.closed and sock.smcp_queued == 0
        assert sock.sid not in h.server.sio.eio.sockets
        async with asyncio.timeout(5):
            while peer.sio.connected:
                await asyncio.sleep(0.02)
        assert h.server.metrics.connections == 0
        stuck.cancel()


class _GatedWS:
    """A WebSocket whose sends wait while ``gate`` is clear (a transport under back-pressure)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.incoming: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: list[Any] = []
        self.closed = False
        self.fail: type[BaseException] | None = None

    async def wait(self) -> Any:
        return await self.incoming.get()

    async def send(self, message: Any) -> None:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail()
        self.sent.append(message)

    async def close(self) -> None:
        self.closed = True


async def _writing_socket() -> tuple[Any, _GatedWS, asyncio.Task[None]]:
    from engineio import async_socket

    sock = _handler_socket(_timer_poll_class(async_socket.AsyncSocket), connected=False, deadline=30)
    sock.closed, sock.closing, sock.last_ping = False, False, None
    ws = _GatedWS()
    handler = asyncio.ensure_future(sock._websocket_handler(ws))
    async with asyncio.timeout(5):
        while sock.smcp_ws is None:
            await asyncio.sleep(0)
    return sock, ws, handler


@pytest.mark.anyio
async def test_a_send_is_written_at_once_and_order_holds_under_back_pressure() -> None:
    from engineio import packet as eio_packet

    def msg(text: str) -> Any:
        return eio_packet.Packet(eio_packet.MESSAGE, data=text)

    sock, ws, handler = await _writing_socket()
    await sock.send(msg("a"))
    assert ws.sent == ["4a"]  # written by the sender itself: no hand-off to the writer task
    ws.gate.clear()
    async with asyncio.timeout(1):  # a write that has to wait does not hold up its sender
        await sock.send(msg("b"))
        await sock.send(msg("c"))
        await sock.send(msg("d"))
    assert sock.smcp_tail is not None and sock.queue.qsize() == 2 and ws.sent == ["4a"]
    ws.gate.set()
    async with asyncio.timeout(5):
        while len(ws.sent) < 4 or sock.smcp_tail is not None:
            await asyncio.sleep(0.01)
    assert ws.sent == ["4a", "4b", "4c", "4d"]
    await sock.send(msg("e"))
    assert ws.sent[-1] == "4e"
    ws.incoming.put_nowait(None)  # the client closes
    async with asyncio.timeout(5):
        await handler
    assert ws.closed and sock.smcp_ws is None


@pytest.mark.anyio
@pytest.mark.parametrize("waits", [False, True], ids=["at once", "after waiting"])
async def test_a_failed_direct_write_ends_the_writer(waits: bool) -> None:
    from engineio import packet as eio_packet

    sock, ws, handler = await _writing_socket()
    ws.fail = OSError
    if waits:
        ws.gate.clear()
    await sock.send(eio_packet.Packet(eio_packet.MESSAGE, data="lost"))
    ws.gate.set()
    async with asyncio.timeout(5):
        while not ws.closed:
            await asyncio.sleep(0.01)
    assert sock.smcp_ws is None and ws.sent == []
    ws.incoming.put_nowait(None)
    async with asyncio.timeout(5):
        await handler


@pytest.mark.anyio
async def test_poll_hands_the_writer_a_bounded_batch() -> None:
    from engineio import async_socket
    from engineio import packet as eio_packet

    sock = _poll_socket(_timer_poll_class(async_socket.AsyncSocket))
    big = "x" * (600 * 1024)
    for _ in range(4):
        sock.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=big))
    sock.smcp_queued = 4 * len(big)
    first = await sock.poll()
    assert len(first) == 2  # 1.2 MiB: past the 1 MiB batch
    assert sock.smcp_queued == 2 * len(big)
    assert len(await sock.poll()) == 2
    assert sock.smcp_queued == 0


@pytest.mark.anyio
async def test_a_long_poll_is_answered_with_at_most_16_packets() -> None:
    from engineio import async_socket, payload
    from engineio import packet as eio_packet

    assert payload.Payload.max_decode_packets == 16  # what python-engineio's client accepts
    sock = _poll_socket(_timer_poll_class(async_socket.AsyncSocket))
    sock.upgraded = False
    for i in range(40):
        sock.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=f"4{i}"))
    assert [len(await sock.poll()) for _ in range(3)] == [16, 16, 8]
    sock.upgraded = True
    for i in range(40):
        sock.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=f"4{i}"))
    assert len(await sock.poll()) == 40


def test_packet_internals_still_exist() -> None:
    assert packet.Packet.uses_binary_events is True
    assert callable(packet.Packet.data_is_binary)
    assert (packet.EVENT, packet.ACK, packet.BINARY_EVENT, packet.BINARY_ACK) == (2, 3, 5, 6)


def test_server_internals_used_by_the_relay_still_exist() -> None:
    cls = packet_class()
    sio = socketio.AsyncServer(async_mode="asgi", serializer=cls)
    assert sio.packet_class is cls
    for name in ("_send_packet", "_handle_eio_message", "_binary_packet"):
        assert hasattr(sio, name), name
    for name in ("_generate_ack_id", "callbacks", "eio_sid_from_sid", "sid_from_eio_sid", "trigger_callback"):
        assert hasattr(sio.manager, name), name


def test_plain_payload_is_not_scanned_and_encodes_like_python_socketio(monkeypatch: Any) -> None:
    cls = packet_class()
    data = ["client:tool_call", {"a": [1, {"b": "ü"}], "c": None}]

    def no_scan(data: Any) -> bool:
        raise AssertionError("scanned")

    expected = packet.Packet(packet.EVENT, data=data, namespace="/smcp", id=7).encode()
    monkeypatch.setattr(packet.Packet, "data_is_binary", no_scan)
    pkt = cls(packet.EVENT, data=data, namespace="/smcp", id=7)
    assert pkt.packet_type == packet.EVENT
    assert pkt.encode() == expected


@pytest.mark.parametrize(
    ("kind", "binary_kind"), [(packet.EVENT, packet.BINARY_EVENT), (packet.ACK, packet.BINARY_ACK)]
)
def test_payload_with_bytes_is_sent_as_attachments(kind: int, binary_kind: int) -> None:
    data = ["x", {"blob": b"\x00\xff", "more": [bytearray(b"ab")]}]
    expected = packet.Packet(kind, data=data, namespace="/smcp", id=3).encode()
    got = packet_class()(kind, data=data, namespace="/smcp", id=3).encode()
    assert got == expected
    assert got[0].startswith(f"{binary_kind}2-/smcp,3")


def test_unserialisable_payload_still_fails_and_binary_connect_error_is_refused() -> None:
    cls = packet_class()
    with pytest.raises(TypeError):
        cls(packet.EVENT, data=["x", {1, 2}]).encode()
    with pytest.raises(TypeError):
        cls(packet.CONNECT_ERROR, data={"b": b"x"}).encode()


def test_json_module_is_set_on_the_packet_class_only() -> None:
    class Codec:
        @staticmethod
        def dumps(obj: Any, **kwargs: Any) -> str:
            return json.dumps(obj, **kwargs).replace("1", "2")

        loads = staticmethod(json.loads)

    before = packet.Packet.json
    cls = packet_class(Codec)
    assert cls(packet.EVENT, data=["e", 1]).encode() == '2["e",2]'
    assert packet.Packet.json is before
    assert packet_class().json is before


@pytest.mark.anyio
async def test_binary_reply_is_relayed_with_its_attachments() -> None:
    blob = bytes(range(256))

    def handler(event: str, data: Any) -> Any:
        return {"content": [{"type": "text", "text": "t"}], "isError": False, "raw": blob}

    async with running(ServerSettings()) as h:
        agent = await h.agent()
        await h.computer(handler=handler)
        data = {
            "agent": "agentA",
            "req_id": "r1",
            "computer": "comp1",
            "tool_name": "t",
            "params": {},
            "timeout": 5,
        }
        (reply,) = await agent.call("client:tool_call", data)
    assert reply["raw"] == blob


def test_default_manager_is_recognised_and_subclasses_are_not() -> None:
    class Sub(socketio.AsyncManager):  # type: ignore[misc]
        pass

    assert is_default_manager(socketio.AsyncServer(async_mode="asgi").manager)
    assert not is_default_manager(Sub())


def test_event_handling_still_goes_through_handle_event() -> None:
    from socketio import async_server

    params = list(inspect.signature(async_server.AsyncServer._handle_event).parameters)
    assert params == ["self", "eio_sid", "namespace", "id", "data"]
    source = inspect.getsource(async_server.AsyncServer._handle_eio_message)
    assert source.count("self._handle_event(") == 2  # EVENT and a completed BINARY_EVENT
    assert set(base_server.BaseServer.reserved_events) <= {
        "connect",
        "disconnect",
        "connect_error",
        "message",
    }


@pytest.mark.anyio
async def test_send_event_with_ack_and_forget_ack() -> None:
    async def slow(event: str, data: Any) -> Any:
        if data.get("slow"):
            await asyncio.sleep(30)
        return {"got": data}

    async with running(ServerSettings()) as h:
        comp = await h.computer(handler=slow)
        sio = h.server.sio
        sid = comp.sio.get_sid("/smcp")
        replies: list[tuple[Any, ...]] = []
        done = asyncio.Event()

        def on_ack(*args: Any) -> None:
            replies.append(args)
            done.set()

        ack_id = await send_event_with_ack(
            sio, sid, "client:get_tools", {"x": 1}, namespace="/smcp", callback=on_ack
        )
        assert isinstance(ack_id, int)
        await asyncio.wait_for(done.wait(), 5)
        assert replies == [({"got": {"x": 1}},)]
        assert ack_id not in sio.manager.callbacks[sid]  # python-socketio dropped the answered entry
        assert await send_event_with_ack(sio, "nobody", "e", {}, namespace="/smcp", callback=on_ack) is None
        pending = await send_event_with_ack(
            sio, sid, "client:get_tools", {"slow": True}, namespace="/smcp", callback=on_ack
        )
        assert pending in sio.manager.callbacks[sid]
        forget_ack(sio.manager, sid, pending)  # type: ignore[arg-type]
        assert pending not in sio.manager.callbacks[sid]
        forget_ack(sio.manager, "nobody", 1)


def test_forget_callback_removes_only_that_callback() -> None:
    manager = socketio.AsyncManager()

    def one(*args: Any) -> None: ...

    def two(*args: Any) -> None: ...

    first = manager._generate_ack_id("s", one)
    second = manager._generate_ack_id("s", two)
    forget_callback(manager, "s", one)
    assert first not in manager.callbacks["s"] and manager.callbacks["s"][second] is two
    forget_callback(manager, "other", two)
    forget_callback(object(), "s", two)
    assert manager.callbacks["s"][second] is two


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('2/smcp,12["client:tool_call",{"x":"' + "y" * 1000, RawHeader("2", "/smcp", 12, "client:tool_call")),
        ('3/smcp,7[{"content":"', RawHeader("3", "/smcp", 7, "<event>")),
        ('2["e\\"q",1]', RawHeader("2", "/", None, 'e\\"q')),
        ("2/smcp,[5]", RawHeader("2", "/smcp", None, "<event>")),
        ("x" * 10, None),
    ],
)
def test_raw_header_matches_what_python_socketio_encodes(text: str, expected: RawHeader | None) -> None:
    assert raw_header(text) == expected


def test_raw_header_reads_python_socketio_encoding() -> None:
    encoded = packet.Packet(
        packet.EVENT, data=["client:get_blob", {"a": 1}], namespace="/smcp", id=99
    ).encode()
    assert raw_header(encoded) == RawHeader("2", "/smcp", 99, "client:get_blob")
    encoded = packet.Packet(packet.ACK, data=[{"a": 1}], namespace="/smcp", id=3).encode()
    assert raw_header(encoded) == RawHeader("3", "/smcp", 3, "<event>")


# -- the WebSocket reader without a task per message -------------------------------------------

HANG = object()  # the scripted client sends nothing more
PAUSE = object()  # the scripted client waits 0.12 s


class _ScriptedWS:
    """What the ASGI driver gives ``_websocket_handler``: ``wait``/``send``/``close``."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.sent: list[Any] = []
        self.closed = False

    async def wait(self) -> Any:
        item = self.script.pop(0) if self.script else HANG
        while item is PAUSE:  # a gap shorter than the read deadline
            await asyncio.sleep(0.12)
            item = self.script.pop(0) if self.script else HANG
        if item is HANG:
            await asyncio.sleep(3600)
        if isinstance(item, type) and issubclass(item, BaseException):
            raise item()
        return item

    async def send(self, message: Any) -> None:
        self.sent.append(message)

    async def close(self) -> None:
        self.closed = True


def _handler_socket(cls: type[Any], *, connected: bool, deadline: float) -> Any:
    class Recording(cls):  # type: ignore[misc,valid-type]
        async def receive(self, pkt: Any) -> None:
            if pkt.data == "boom":
                raise RuntimeError("boom")
            self.got.append((pkt.packet_type, pkt.data))

        async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
            self.closed_with = (wait, abort, reason)

    sock = object.__new__(Recording)

    async def on_message(sid: str, data: Any) -> None:  # what receive() hands a MESSAGE to
        if data == "boom":
            raise RuntimeError("boom")
        sock.got.append((4, data))

    sock.queue = asyncio.Queue()
    sock.server = types.SimpleNamespace(
        ping_interval=deadline,
        ping_timeout=0.0,
        max_http_buffer_size=100,
        logger=logging.getLogger("test.engineio"),
        reason=types.SimpleNamespace(TRANSPORT_CLOSE="transport close"),
        handlers={"message": on_message},
        async_handlers=False,
    )
    sock.sid, sock.connected, sock.upgraded, sock.upgrading = "s1", connected, False, False
    sock.got, sock.closed_with = [], None
    return sock


SCRIPTS = {
    "upgrade, messages, a failing one, client closes": (True, ["2probe", "5", "4hello", "4boom", "4x", None]),
    "no probe": (True, ["2nope"]),
    "no upgrade packet": (True, ["2probe", "4early"]),
    "transport error during the probe": (True, [OSError]),
    "direct websocket, message over the limit": (False, ["4a", "4" + "x" * 200, "4never"]),
    "direct websocket, client goes silent": (False, ["4a", HANG]),
    # 0.36 s of messages with gaps under the 0.2 s deadline: the deadline counts from the last one
    "direct websocket, a trickle outlasting the deadline": (
        False,
        ["4a", PAUSE, "4b", PAUSE, "4c", PAUSE, "4d", HANG],
    ),
    "direct websocket, transport error": (False, ["4a", OSError, "4never"]),
}


async def _run_handler(cls: type[Any], connected: bool, script: list[Any]) -> dict[str, Any]:
    sock = _handler_socket(cls, connected=connected, deadline=0.2)
    ws = _ScriptedWS(script)
    await asyncio.wait_for(sock._websocket_handler(ws), 10)
    return {
        "got": sock.got,
        "sent": ws.sent,
        "ws_closed": ws.closed,
        "closed_with": sock.closed_with,
        "flags": (sock.connected, sock.upgraded, sock.upgrading),
        "left_unread": len(ws.script),
    }


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(SCRIPTS))
async def test_websocket_reader_behaves_like_engineio(case: str) -> None:
    from engineio import async_socket

    connected, script = SCRIPTS[case]
    ours = await _run_handler(_timer_poll_class(async_socket.AsyncSocket), connected, script)
    theirs = await _run_handler(async_socket.AsyncSocket, connected, script)
    if case == "transport error during the probe":
        # python-engineio leaves `upgrading` set on this path (holding back every later send); ours clears it
        assert theirs["flags"] == (True, False, True)
        theirs["flags"] = (True, False, False)
    assert ours == theirs
    if case.startswith("upgrade"):
        assert ours["got"] == [(4, "hello"), (4, "x")]
        assert ours["sent"] == ["3probe", "6"]  # the pong, then the NOOP that ends the client's poll
        assert ours["closed_with"] == (False, True, "transport close") and ours["ws_closed"]
    if "trickle" in case:
        assert ours["got"] == [(4, "a"), (4, "b"), (4, "c"), (4, "d")]
        assert ours["ws_closed"]  # then the silence past the deadline closed it


@pytest.mark.anyio
async def test_engineio_receive_hands_a_message_to_the_message_handler_inline() -> None:
    """What the reader's MESSAGE shortcut stands for: ``receive`` awaiting the handler itself."""
    from engineio import async_socket
    from engineio import packet as eio_packet

    calls: list[tuple[Any, ...]] = []

    async def trigger(event: str, *args: Any, **kwargs: Any) -> None:
        calls.append((event, *args, kwargs))

    sock = object.__new__(async_socket.AsyncSocket)
    sock.sid = "s1"
    sock.server = types.SimpleNamespace(
        logger=logging.getLogger("test.engineio"), _trigger_event=trigger, async_handlers=False
    )
    await sock.receive(eio_packet.Packet(encoded_packet="4hello"))
    assert calls == [("message", "s1", "hello", {"run_async": False})]
    server = socketio.AsyncServer(async_mode="asgi")
    assert server.eio.async_handlers is False  # python-socketio runs engineio's handlers inline
    assert server.eio.handlers["message"] == server._handle_eio_message


def test_engineio_websocket_handler_still_reads_through_a_task_per_message() -> None:
    """What ours replaces: re-check ``_timer_poll_class`` when this changes."""
    from engineio import async_socket

    source = inspect.getsource(async_socket.AsyncSocket._websocket_handler)
    for step in (
        "asyncio.ensure_future(websocket_wait())",
        "self.server.ping_interval + self.server.ping_timeout",
        "max_http_buffer_size",
        "packet.PING",
        "packet.UPGRADE",
        "await self.receive(pkt)",
        "reason=self.server.reason.TRANSPORT_CLOSE",
    ):
        assert step in source, step


@pytest.mark.anyio
async def test_upgraded_connections_are_read_by_our_handler() -> None:
    async with running(ServerSettings()) as h:
        await h.agent()
        await h.computer()
        sockets = list(h.server.sio.eio.sockets.values())
        assert sockets and all(s.upgraded for s in sockets)  # joined over the upgraded WebSocket
        assert {type(s)._websocket_handler.__qualname__ for s in sockets} == {
            "_timer_poll_class.<locals>.SMCPSocket._websocket_handler"
        }


def test_python_socketios_event_task_is_what_the_direct_path_replaces() -> None:
    from socketio import async_server

    internal = inspect.getsource(async_server.AsyncServer._handle_event_internal)
    assert "server._trigger_event(data[0], namespace, sid, *data[1:])" in internal
    assert "packet.ACK, namespace=namespace, id=id, data=data" in internal
    handle = inspect.getsource(async_server.AsyncServer._handle_event)
    assert "self.manager.sid_from_eio_sid(eio_sid, namespace)" in handle
    assert "self.manager.is_connected(sid, namespace)" in handle
    assert "self.async_handlers" in handle
    trigger = inspect.getsource(async_server.AsyncServer._trigger_event)
    assert "except asyncio.CancelledError" in trigger  # a cancelled handler is answered with nothing


@pytest.mark.anyio
async def test_own_handlers_run_directly_and_the_rest_through_python_socketio(
    monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from socketio import async_server

    from smcp.server.core._socketio_internals import oversize_aware_server_class
    from smcp.testing.server import serve

    through_socketio: list[str] = []
    internal = async_server.AsyncServer._handle_event_internal

    async def counted(self: Any, server: Any, sid: str, eio_sid: str, data: Any, *rest: Any) -> Any:
        through_socketio.append(data[0])
        return await internal(self, server, sid, eio_sid, data, *rest)

    monkeypatch.setattr(async_server.AsyncServer, "_handle_event_internal", counted)

    async def ignore(*_: Any) -> None:
        return None

    sio = oversize_aware_server_class()(ignore, 1 << 20, ignore, async_mode="asgi")
    seen: list[tuple[str, Any]] = []

    async def pair(sid: str, data: Any) -> tuple[Any, ...]:
        seen.append((sid, data))
        return ("one", data)

    async def nothing(sid: str, data: Any) -> None:
        return None

    async def cancelled(sid: str, data: Any) -> Any:
        raise asyncio.CancelledError

    async def boom(sid: str, data: Any) -> Any:
        raise RuntimeError("boom")

    def plain(sid: str, data: Any) -> str:
        return "sync"

    async def any_event(event: str, sid: str, data: Any) -> str:
        return f"caught {event}"

    for name, handler in [("pair", pair), ("nothing", nothing), ("cancelled", cancelled), ("boom", boom),
                          ("plain", plain), ("*", any_event)]:  # fmt: skip
        sio.on(name, handler, namespace="/t")
    client = socketio.AsyncClient()
    async with serve(socketio.ASGIApp(sio)) as url:
        await client.connect(url, namespaces=["/t"], transports=["websocket"], wait_timeout=5)
        try:
            call = client.call
            assert await call("pair", {"x": 1}, namespace="/t", timeout=5) == ("one", {"x": 1})
            assert seen == [(client.get_sid("/t"), {"x": 1})]
            assert await call("nothing", 1, namespace="/t", timeout=5) is None
            assert await call("cancelled", 1, namespace="/t", timeout=5) is None
            with (
                caplog.at_level(logging.ERROR, logger="socketio.server"),
                pytest.raises(socketio.exceptions.TimeoutError),  # no ack, as python-socketio
            ):
                await call("boom", 1, namespace="/t", timeout=0.5)
            assert "handler of boom raised" in caplog.text
            assert await call("plain", 1, namespace="/t", timeout=5) == "sync"
            assert await call("other", 1, namespace="/t", timeout=5) == "caught other"
        finally:
            await client.disconnect()
    assert through_socketio == ["other"]
