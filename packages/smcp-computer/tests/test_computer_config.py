"""Loading mcp.json files: the official shape, JSON and YAML, problems named by file and path."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from smcp.computer._config import ConfigError, bundle_id_of, load_config, parse_config

STDIO = {"type": "stdio", "server_parameters": {"command": "python", "args": ["s.py"]}}
HTTP = {"type": "streamable", "server_parameters": {"url": "http://127.0.0.1:1/mcp", "timeout": "PT10S"}}
SSE = {"type": "sse", "server_parameters": {"url": "http://127.0.0.1:1/sse"}}
OFFICIAL = {
    "servers": {
        "Subscribe Srv!": {
            **STDIO,
            "disabled": False,
            "forbidden_tools": ["x"],
            "tool_meta": {"mark_a": {"alias": "mark", "ret_object_mapper": {"a": "b"}}},
            "default_tool_meta": {"auto_apply": True, "tags": ["t1"]},
        },
        "web": HTTP,
        "legacy": SSE,
    },
    "inputs": [
        {"id": "tok", "description": "token", "type": "promptString", "default": "zzz", "password": True},
        {"id": "p", "description": "pick", "type": "pickString", "options": [{"label": "A", "value": "a"}]},
        {"id": "c", "description": "cmd", "type": "command", "command": "echo"},
    ],
}


def test_official_file_loads_unchanged(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "mcp.json"
    file.write_text(json.dumps(OFFICIAL))
    loaded = load_config(file)
    assert loaded.problems == []
    assert [s.name for s in loaded.servers] == ["Subscribe Srv!", "web", "legacy"]
    assert [bundle_id_of(s) for s in loaded.servers] == ["Subscribe_Srv", "web", "legacy"]
    assert [i.id for i in loaded.inputs] == ["tok", "p", "c"]
    assert loaded.servers[1].server_parameters.timeout == 10.0  # type: ignore[union-attr]


def test_yaml_is_accepted(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "mcp.yaml"
    file.write_text("servers:\n  echo:\n    type: stdio\n    server_parameters:\n      command: python\n")
    loaded = load_config(file)
    assert loaded.ok
    assert loaded.servers[0].server_parameters.command == "python"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "path", "message_part"),
    [
        (
            {"servers": {"a": {"type": "stdio", "server_parameters": {}}}},
            "servers.a.server_parameters.command",
            "required",
        ),
        ({"servers": {"a": {"type": "ftp", "server_parameters": {}}}}, "servers.a", "tag"),
        (
            {"servers": {"a": {**HTTP, "server_parameters": {"url": "u", "timeout": "soon"}}}},
            "servers.a.server_parameters.timeout",
            "ISO-8601",
        ),
        ({"servers": {"a": {**STDIO, "name": "b"}}}, "servers.a.name", "differs from the key"),
        ({"servers": {"a": {**STDIO, "bundle_id": "a.b"}}}, "servers.a.bundle_id", "invalid bundle_id"),
        (
            {"servers": {"a": {**STDIO, "bundle_id": "x"}, "b": {**STDIO, "bundle_id": "x"}}},
            "servers.b",
            "already used",
        ),
        ({"servers": {"a": 3}}, "servers.a", "expected an object"),
        ({"servers": []}, "servers", "expected an object"),
        (
            {"inputs": [{"id": "p", "type": "pickString", "options": ["a", "b"]}]},
            "inputs[0].options",
            "label",
        ),
        (
            {
                "inputs": [
                    {
                        "id": "p",
                        "type": "pickString",
                        "options": [{"label": "A", "value": "a"}],
                        "default": "z",
                    }
                ]
            },
            "inputs[0]",
            "not the value of any option",
        ),
        (
            {"inputs": [{"id": "x", "type": "promptString"}, {"id": "x", "type": "promptString"}]},
            "inputs[1].id",
            "duplicate",
        ),
        ({"inputs": {}}, "inputs", "expected a list"),
        ({"servres": {}}, "servres", "unknown top-level key"),
        ([], "<root>", "expected an object"),
    ],
)
def test_problems_name_file_path_and_reason(data: Any, path: str, message_part: str) -> None:
    loaded = parse_config(data, source="mcp.json")
    assert any(p.path == path and message_part in p.message for p in loaded.problems), loaded.problems
    assert all(str(p).startswith("mcp.json: ") for p in loaded.problems)


def test_valid_entries_survive_invalid_neighbours() -> None:
    data = {
        "servers": {"bad": {"type": "stdio", "server_parameters": {}}, "good": STDIO},
        "inputs": [{"id": "p", "type": "pickString", "options": ["x"]}, {"id": "ok", "type": "promptString"}],
    }
    loaded = parse_config(data, source="f")
    assert [s.name for s in loaded.servers] == ["good"]
    assert [i.id for i in loaded.inputs] == ["ok"]
    assert len(loaded.problems) == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "cannot read"),
        ("bad.json", "{", "invalid JSON"),
        ("bad.yaml", "a: [", "invalid YAML"),
    ],
)
def test_unreadable_files_raise_config_error(
    tmp_path: pathlib.Path, name: str, content: str | None, message: str
) -> None:
    file = tmp_path / name
    if content is not None:
        file.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(file)
