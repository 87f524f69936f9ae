"""VRL post-processing (docs/protocol.md §9.5) against the real toolbox MCP server and the real vrl-python."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from smcp.computer import Computer, Supervision, _vrl, parse_config

pytestmark = pytest.mark.anyio

TOOLBOX = (
    Path(__file__).resolve().parents[3] / "packages/smcp-testing/src/smcp/testing/mcp_servers/toolbox.py"
)
FAST = Supervision(initial_delay=0.1, max_attempts=3, ping_interval=0)

TRANSFORM = """
.summary = "tool " + string!(.tool_name)
.sum_of = [.parameters.a, .parameters.b]
.first_text = .content[0].text
.configured = .meta.a2c_tool_meta.auto_apply
del(.content)
"""


def decl(vrl: str | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "stdio",
        "server_parameters": {"command": sys.executable, "args": [str(TOOLBOX), "stdio"]},
        "default_tool_meta": {"auto_apply": True},
        **extra,
    }
    if vrl is not None:
        out["vrl"] = vrl
    return out


def make(servers: dict[str, Any], tmp_path: Path) -> Computer:
    loaded = parse_config({"servers": servers})
    assert loaded.ok, loaded.problems
    return Computer(
        "c1",
        loaded.servers,
        supervision=FAST,
        spool_dir=tmp_path / "spool",
        skill_home=tmp_path / "skills",
    )


@pytest.fixture
def fresh_vrl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no runtime, no compiled scripts and no 'missing' warning given."""
    monkeypatch.setattr(_vrl, "_state", _vrl._State())


async def test_transformed_result_is_a_json_string_and_content_is_unchanged(
    tmp_path: Path, fresh_vrl: None
) -> None:
    pytest.importorskip("vrl_python")
    computer = make({"box": decl(TRANSFORM), "plain": decl(None)}, tmp_path)
    async with asyncio.timeout(60), computer:
        result = await computer.call_tool("box__add", {"a": 2, "b": 3}, timeout=10)
        plain = await computer.call_tool("plain__add", {"a": 2, "b": 3}, timeout=10)
        second = await computer.call_tool("box__echo", {"text": "héllo"}, timeout=10)
    assert result["isError"] is False
    assert result["content"] == plain["content"]
    assert result["content"][0]["text"] == "5"
    assert list(result) == ["meta", "content", "structuredContent", "isError"]
    text = result["meta"]["a2c_vrl_transformed"]
    assert isinstance(text, str)
    transformed = json.loads(text)
    assert transformed["summary"] == "tool add"
    assert transformed["sum_of"] == [2, 3]
    assert transformed["first_text"] == "5"
    assert transformed["configured"] is True  # the event is taken after a2c_tool_meta is set
    assert transformed["tool_name"] == "add"
    assert transformed["parameters"] == {"a": 2, "b": 3}
    assert "content" not in transformed
    assert result["meta"]["a2c_tool_meta"] == plain["meta"]["a2c_tool_meta"]
    assert "a2c_vrl_transformed" not in plain["meta"]
    # non-ASCII text is kept as is (ensure_ascii=False)
    assert "héllo" in second["meta"]["a2c_vrl_transformed"]
    assert json.loads(second["meta"]["a2c_vrl_transformed"])["summary"] == "tool echo"
    # compiled once, reused for later calls
    assert _vrl._state.compiled == {TRANSFORM: None}


async def test_runtime_failure_leaves_the_result_unchanged(
    tmp_path: Path, fresh_vrl: None, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("vrl_python")
    failing = ".parsed = parse_json!(.content[0].text)\n.ok = true\n"
    computer = make({"box": decl(failing), "plain": decl(None)}, tmp_path)
    async with asyncio.timeout(60), computer:
        with caplog.at_level(logging.WARNING, logger="smcp.computer"):
            result = await computer.call_tool("box__echo", {"text": "not json"}, timeout=10)
        plain = await computer.call_tool("plain__echo", {"text": "not json"}, timeout=10)
        parsed = await computer.call_tool("box__echo", {"text": "[1, 2]"}, timeout=10)
    assert result == plain
    assert "a2c_vrl_transformed" not in result["meta"]
    assert any("vrl script failed" in r.getMessage() and "echo" in r.getMessage() for r in caplog.records)
    # the same script works when the data allows it
    assert json.loads(parsed["meta"]["a2c_vrl_transformed"])["parsed"] == [1, 2]


def test_invalid_syntax_is_a_config_problem() -> None:
    pytest.importorskip("vrl_python")
    loaded = parse_config(
        {"servers": {"bad": decl(".x = "), "semantic": decl(".y = .a + 1"), "good": decl(TRANSFORM)}},
        source="mcp.json",
    )
    assert [s.name for s in loaded.servers] == ["good"]
    assert not loaded.ok
    by_path = {p.path: p for p in loaded.problems}
    assert set(by_path) == {"servers.bad.vrl", "servers.semantic.vrl"}
    assert by_path["servers.bad.vrl"].severity == "error"
    assert "invalid VRL script" in by_path["servers.bad.vrl"].message
    assert "syntax error" in by_path["servers.bad.vrl"].message
    assert "fallible" in by_path["servers.semantic.vrl"].message
    assert str(by_path["servers.bad.vrl"]).startswith("mcp.json: servers.bad.vrl: invalid VRL script")


def test_blank_script_is_no_script() -> None:
    loaded = parse_config({"servers": {"box": decl("   ")}})
    assert loaded.problems == [] and len(loaded.servers) == 1


async def test_missing_extra_is_a_warning_and_the_server_still_runs(
    tmp_path: Path, fresh_vrl: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "vrl_python", None)  # import vrl_python -> ImportError
    loaded = parse_config({"servers": {"box": decl(TRANSFORM)}}, source="mcp.json")
    assert loaded.ok
    assert [s.name for s in loaded.servers] == ["box"]
    (problem,) = loaded.problems
    assert problem.severity == "warning" and problem.path == "servers.box.vrl"
    assert "smcp-computer[vrl]" in problem.message and "vrl-python" in problem.message
    assert str(problem).startswith("mcp.json: servers.box.vrl: warning: ")

    computer = Computer("c1", loaded.servers, supervision=FAST, spool_dir=tmp_path / "spool")
    async with asyncio.timeout(60), computer:
        with caplog.at_level(logging.WARNING, logger="smcp.computer"):
            first = await computer.call_tool("box__add", {"a": 1, "b": 1}, timeout=10)
            second = await computer.call_tool("box__add", {"a": 1, "b": 2}, timeout=10)
    assert first["isError"] is False and first["content"][0]["text"] == "2"
    assert "a2c_vrl_transformed" not in first["meta"] and "a2c_vrl_transformed" not in second["meta"]
    missing = [r for r in caplog.records if "smcp-computer[vrl]" in r.getMessage()]
    assert len(missing) == 1  # said once, not on every call


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Asia/Shanghai", "Asia/Shanghai"),
        (":Europe/Paris", "Europe/Paris"),
        ("/usr/share/zoneinfo/America/New_York", "America/New_York"),
        ("/usr/share/zoneinfo/posix/Europe/Berlin", "Europe/Berlin"),
    ],
)
def test_host_timezone_from_tz(monkeypatch: pytest.MonkeyPatch, tz: str, expected: str) -> None:
    monkeypatch.setenv("TZ", tz)
    assert _vrl.host_timezone() == expected


def test_host_timezone_without_tz_is_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TZ", raising=False)
    zone = _vrl.host_timezone()
    assert zone and not zone.startswith("/")


def test_unknown_timezone_falls_back_to_utc(monkeypatch: pytest.MonkeyPatch, fresh_vrl: None) -> None:
    pytest.importorskip("vrl_python")
    monkeypatch.setenv("TZ", "Not/A_Zone")
    wire: dict[str, Any] = {"meta": None, "content": [], "structuredContent": None, "isError": False}
    _vrl.apply_vrl(wire, '.zone = "ok"', "box", "t", {})
    assert json.loads(wire["meta"]["a2c_vrl_transformed"])["zone"] == "ok"
