"""The README's demo runs end to end: server, Computer, MCP server, Agent, clean exit."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_demo_runs_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "desk__list_files" in done.stdout
    assert "README.txt" in done.stdout
    assert "18.0" in done.stdout  # (17 + 25) * 3 / 7
    assert "demo finished" in done.stdout
