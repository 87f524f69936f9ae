"""Shared fixtures: the toolbox MCP server (``testing/mcp_servers/toolbox.py``) over HTTP transports."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TOOLBOX = Path(__file__).resolve().parents[3] / "testing" / "mcp_servers" / "toolbox.py"


def _toolbox_over(kind: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(TOOLBOX), kind, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"LISTENING (\d+)", line)
        assert match, f"toolbox {kind} did not start: {line!r}"
        yield f"http://127.0.0.1:{match.group(1)}/{'mcp' if kind == 'http' else 'sse'}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """The toolbox over streamable HTTP (endpoint ``/mcp``)."""
    yield from _toolbox_over("http")


@pytest.fixture(scope="module")
def sse_url() -> Iterator[str]:
    """The toolbox over SSE (endpoint ``/sse``)."""
    yield from _toolbox_over("sse")
