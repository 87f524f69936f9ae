"""Helpers shared by the official peer scripts (they run inside the official a2c-smcp venv).

``a2c_smcp`` attaches a stdout log handler when it is first imported. The peers use stdout for
their protocol lines (``LISTENING``, ``READY``, JSON answers), so :func:`import_official` imports it
while ``sys.stdout`` points at stderr: the SDK's log handler is then bound to stderr for good.

Importing this module also puts ``../peer_lib`` (stdlib-only helpers shared with ``our_peers``) on
``sys.path`` and re-exports what the official peers use of it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "peer_lib"))  # the peers run as scripts

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
