"""Fuzzed ``mcp.json`` files, JSON and YAML, never crash the Computer's loader or ``smcp-computer
validate``; every problem names the file, the path in it and the reason (issue 17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, seed
from hypothesis import strategies as st

from smcp.computer import ConfigError
from smcp.computer._config import load_config
from smcp.testing import hostile

CASES = int(os.environ.get("HOSTILE_CONFIG_CASES", "1500"))
SEED = int(os.environ.get("HOSTILE_SEED", "17"))

_value = hostile.json_values()
_server = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["stdio", "sse", "streamable", "http", "nope", 5]) | _value,
        "name": st.text(max_size=10) | _value,
        "server_parameters": st.fixed_dictionaries(
            {},
            optional={"command": st.text(max_size=10) | _value, "args": _value, "url": _value, "env": _value},
        )
        | _value,
        "disabled": _value,
        "default_tool_meta": st.fixed_dictionaries({}, optional={"auto_apply": _value, "alias": _value})
        | _value,
        "tool_meta": _value,
        "vrl": _value,
    },
)
_input = st.fixed_dictionaries(
    {}, optional={"id": _value, "type": st.sampled_from(["promptString", "pickString", "command"]) | _value}
)
CONFIGS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "servers": st.dictionaries(st.text(max_size=8), _server, max_size=3) | _value,
            "inputs": st.lists(_input, max_size=3) | _value,
        },
    ),
    _value,
)


def render(data: Any, kind: str, mangle: int) -> bytes:
    text = json.dumps(data) if kind == "json" else yaml.safe_dump(data)
    raw = text.encode()
    if mangle == 1:
        raw = raw[: len(raw) // 2]  # truncated
    elif mangle == 2:
        raw = raw.replace(b'"', b"", 1)  # a quote missing
    elif mangle == 3:
        raw = b"\xff\xfe" + raw  # not UTF-8
    elif mangle == 4:
        raw = raw + b"\x00"
    return raw


def check_problems(path: Path, loaded: Any) -> None:
    for problem in loaded.problems:
        assert problem.file == str(path), problem
        assert problem.path and problem.message, problem


def test_fuzzed_config_files_never_crash_the_loader(tmp_path: Path) -> None:
    count = 0

    @seed(SEED)
    @hostile.fuzz_settings(CASES)
    @given(CONFIGS, st.sampled_from(["json", "yaml"]), st.sampled_from([0, 0, 0, 1, 2, 3, 4]))
    def fuzz(data: Any, kind: str, mangle: int) -> None:
        nonlocal count
        path = tmp_path / f"mcp.{kind}"
        try:
            raw = render(data, kind, mangle)
        except (TypeError, ValueError, yaml.YAMLError):
            return
        path.write_bytes(raw)
        count += 1
        try:
            loaded = load_config(path)
        except ConfigError as exc:
            assert str(path) in str(exc), exc
            return
        check_problems(path, loaded)

    fuzz()
    print(f"\n[hostile] mcp.json loader: {count} fuzzed files (seed {SEED})")
    assert count >= CASES // 2


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe{not utf-8",
        b'{"servers": {"a": {"type": "stdio", "server_parameters": {"command": 5}}}}',
        b"[1, 2",
        b'{"servers": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b"",
        b"1: x\n'': y\nservers: {3: {type: stdio}, null: [], b: {type: sse, server_parameters: 7}}\n",
    ],
)
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_validate_reports_every_problem_with_file_and_path(tmp_path: Path, raw: bytes, suffix: str) -> None:
    path = tmp_path / f"mcp{suffix}"
    path.write_bytes(raw)
    done = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
        [sys.executable, "-m", "smcp.computer.cli", "validate", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["problems"]
    for problem in report["problems"]:
        assert str(path) in problem, problem
