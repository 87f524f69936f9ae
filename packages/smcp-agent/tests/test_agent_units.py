"""Pure parts of the Agent: the client rules it takes from core, its options, its export table,
the notification routing, the LLM toolset, and a cheap import."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from smcp.agent.llm import Toolset
from smcp.core.handshake import (
    handshake_url,
    parse_join_ack,
    version_error_from_body,
    version_error_from_exception,
)
from smcp.core.models import SMCPTool


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:1", "http://h:1?a2c_version=0.4.0"),
        ("http://h:1/base", "http://h:1/base?a2c_version=0.4.0"),
        ("http://h:1?x=1", "http://h:1?a2c_version=0.4.0&x=1"),
        ("http://h:1?a2c_version=9.9.9&x=1", "http://h:1?a2c_version=0.4.0&x=1"),
        ("https://h?x=a%20b", "https://h?a2c_version=0.4.0&x=a+b"),
    ],
)
def test_handshake_url_puts_our_version_first(url: str, expected: str) -> None:
    assert handshake_url(url) == expected


GATE_4008 = {
    "code": 4008,
    "message": "Protocol version mismatch",
    "server_version": "0.4.0",
    "client_version": "0.3.0",
    "min_supported": "0.4.0",
    "max_supported": "0.4.999",
}


@pytest.mark.parametrize(
    ("body", "is_4008"),
    [
        (GATE_4008, True),
        (json.dumps(GATE_4008), True),
        (json.dumps(GATE_4008).encode(), True),
        ({"code": 400, "message": "Missing a2c_version query parameter"}, False),
        ("Unexpected status code 400 in server response", False),
        (None, False),
    ],
)
def test_version_error_from_body(body: Any, is_4008: bool) -> None:
    err = version_error_from_body(body)
    assert (err is not None) == is_4008
    if err is not None:
        assert (err.server_version, err.client_version, err.min_supported, err.max_supported) == (
            "0.4.0",
            "0.3.0",
            "0.4.0",
            "0.4.999",
        )
        assert "0.3.0" in str(err) and err.error_code == 4008


def test_version_error_found_in_exception_chain() -> None:
    try:
        try:
            raise ConnectionError("Unexpected status code 400 in server response", GATE_4008)
        except ConnectionError as inner:
            raise RuntimeError("Connection error") from inner
    except RuntimeError as outer:
        err = version_error_from_exception(outer)
    assert err is not None and err.client_version == "0.3.0"
    assert version_error_from_exception(RuntimeError("plain")) is None


@pytest.mark.parametrize(
    ("ack", "expected"),
    [
        ((True, None), (True, None)),
        ([True, None], (True, None)),
        ([False, "Agent already in room"], (False, "Agent already in room")),
        (True, (True, None)),
        ({"code": 403, "message": "office not allowed"}, (False, "office not allowed")),
        (None, (False, "unexpected answer None")),
        ([], (False, None)),
    ],
)
def test_join_ack_forms(ack: Any, expected: tuple[bool, str | None]) -> None:
    assert parse_join_ack(ack) == expected


def tool(name: str, description: str = "d", schema: dict[str, Any] | None = None) -> SMCPTool:
    return SMCPTool(
        name=name,
        bundle_id=name.split("__", maxsplit=1)[0],
        description=description,
        params_schema=schema
        if schema is not None
        else {"type": "object", "properties": {"x": {"type": "string"}}},
        return_schema=None,
    )


def test_toolset_single_computer_keeps_wire_names() -> None:
    toolset = Toolset([("c1", tool("tb__echo")), ("c1", tool("tb__add", "None", {}))])
    assert [t["function"]["name"] for t in toolset.openai()] == ["tb__echo", "tb__add"]
    add = toolset.anthropic()[1]
    assert add == {"name": "tb__add", "description": "", "input_schema": {"type": "object", "properties": {}}}
    assert toolset.resolve("tb__echo").computer == "c1"


def test_toolset_many_computers_prefixes_and_stays_unique_and_valid() -> None:
    long = "b" * 40 + "__" + "t" * 40
    entries = [
        ("c1", tool("tb__echo")),
        ("c2", tool("tb__echo")),
        ("c.3 x", tool("tb__echo")),
        ("c1", tool(long)),
        ("c2", tool(long)),
    ]
    toolset = Toolset(entries)
    names = [t.name for t in toolset.tools]
    assert len(set(names)) == 5
    assert all(len(n) <= 64 and all(ch.isalnum() or ch in "_-" for ch in n) for n in names)
    assert names[:3] == ["c1__tb__echo", "c2__tb__echo", "c_3_x__tb__echo"]
    for entry, (computer, original) in zip(toolset.tools, entries, strict=True):
        assert toolset.resolve(entry.name).computer == computer
        assert toolset.resolve(entry.name).tool == original.name
    with pytest.raises(KeyError, match="unknown tool"):
        toolset.resolve("nope")


def test_import_is_light() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import smcp.agent; took = time.perf_counter() - t; "
        "heavy = [m for m in ('socketio', 'pydantic', 'mcp_types', 'aiohttp', 'typer') if m in sys.modules]; "
        "print(took, heavy)"
    )
    timings = []
    for _ in range(3):  # best of three: the budget is about our code, not a busy machine
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        took, heavy = out.stdout.split(" ", 1)
        assert heavy.strip() == "[]"
        timings.append(float(took))
    assert min(timings) < 0.15
