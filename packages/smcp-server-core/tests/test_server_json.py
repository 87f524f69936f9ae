"""The optional orjson shim behaves like the stdlib for what python-socketio sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smcp.server.core import fast_json

orjson = pytest.importorskip("orjson")


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, None, True], "c": "ünïcode ✓", "d": {"e": ""}},
        ["client:tool_call", {"timeout": 5, "params": {}}],
        {"huge": 2**70},  # beyond orjson's 64-bit ints: stdlib fallback
        [],
    ],
)
def test_roundtrip_matches_stdlib(value: Any) -> None:
    shim = fast_json()
    assert shim is not json
    text = shim.dumps(value, separators=(",", ":"))
    assert isinstance(text, str)
    assert json.loads(text) == value
    assert shim.loads(text) == value
    assert shim.loads(json.dumps(value)) == value


def test_loads_falls_back_for_what_orjson_refuses() -> None:
    shim = fast_json()
    assert shim.loads("123456789012345678901234567890") == 123456789012345678901234567890
    assert shim.loads("[-9223372036854775809]") == [-9223372036854775809]
    assert shim.loads(b'{"n": 18446744073709551616}') == {"n": 18446744073709551616}
    assert shim.loads('{"id": "1234567890123456789", "n": 1}') == {"id": "1234567890123456789", "n": 1}
    assert shim.loads('["\u0663\u0663", "é✓", 123456789012345678]') == ["٣٣", "é✓", 123456789012345678]
    assert shim.loads('"\ud800"') == "\ud800"  # a lone surrogate: orjson refuses, the stdlib reads it
    with pytest.raises(ValueError):
        shim.loads("{not json")


def test_server_uses_the_shim_by_default_on_its_own_packets_only() -> None:
    from socketio import packet

    from smcp.server.core import ServerSettings, SMCPServer, TokenAuth

    before = packet.Packet.json
    server = SMCPServer(ServerSettings(), TokenAuth("t"))
    assert type(server.sio.packet_class.json).__name__ == "_OrjsonShim"
    assert packet.Packet.json is before
    assert SMCPServer(ServerSettings(), TokenAuth("t"), json=json).sio.packet_class.json is json
