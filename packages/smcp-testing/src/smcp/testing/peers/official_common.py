"""Helpers shared by the official peer scripts (they run inside the official a2c-smcp venv).

``a2c_smcp`` attaches a stdout log handler when it is first imported. The peers use stdout for
their protocol lines (``LISTENING``, ``READY``, JSON answers), so :func:`import_official` imports it
while ``sys.stdout`` points at stderr: the SDK's log handler is then bound to stderr for good.

It also re-exports what the official peers use of ``command_lines`` (a sibling module: the peers
run by file path, so this folder is ``sys.path[0]``).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from command_lines import CommandDriver, current_command, emit_line, peer_arguments, plain_json

__all__ = ["CommandDriver", "current_command", "emit_line", "import_official", "peer_arguments", "plain_json"]


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
