"""Helpers shared by the official peer scripts (they run inside the official a2c-smcp venv).

``a2c_smcp`` attaches a stdout log handler when it is first imported. The peers use stdout for
their protocol lines (``LISTENING``, ``READY``, JSON answers), so :func:`import_official` imports it
while ``sys.stdout`` points at stderr: the SDK's log handler is then bound to stderr for good.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def import_official() -> ModuleType:
    """Import ``a2c_smcp`` with its log handler bound to stderr; return the module."""
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        module = importlib.import_module("a2c_smcp")
        importlib.import_module("a2c_smcp.utils.logger")  # creates the handler on first import
        return module
    finally:
        sys.stdout = saved


def emit_line(text: str) -> None:
    """Write one protocol line to stdout and flush it."""
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()
