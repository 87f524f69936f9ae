"""Shared fixtures: the toolbox MCP server (smcp-testing's ``mcp_servers/toolbox.py``) over HTTP
transports, and the resource-source helpers of ``fixtures/smcp_b_sources.py``.

The helpers module is loaded here from its file and registered as ``smcp_b_sources`` (conftest
runs before the test modules), so the tests import it without touching ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _register_helpers(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "fixtures" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_register_helpers("smcp_b_sources")

TOOLBOX = (
    Path(__file__).resolve().parents[3] / "packages/smcp-testing/src/smcp/testing/mcp_servers/toolbox.py"
)


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
