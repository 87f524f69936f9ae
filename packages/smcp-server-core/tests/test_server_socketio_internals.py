"""python-socketio internals the server relies on (``_socketio_internals`` and ``_server``).

These fail loudly when python-socketio is upgraded past the tested range or changes what we use:
re-check each use, then widen ``TESTED_SOCKETIO``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
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
    _timer_poll_class,
    packet_class,
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
            "_socketio_internals.py and the private names used in _server.py",
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
