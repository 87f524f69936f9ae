"""Peer scripts that play one role each and talk JSON lines on stdin/stdout; every one runs by
file path (``python <peer_script(name)> ...``), so the folder holds the modules they share.

- ``official_server``, ``official_computer``, ``official_agent``: the official a2c-smcp 0.4.2
  roles; run them with :func:`smcp.testing.official_env.official_python`.
- ``our_agent``: our ``AsyncAgent`` behind the same commands as ``official_agent``.

Each script's docstring gives its arguments and its lines.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("official_server", "official_computer", "official_agent", "our_agent")


def peer_script(name: str) -> Path:
    """The file of the peer script ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"unknown peer {name!r}; choose from {', '.join(NAMES)}")
    return HERE / f"{name}.py"


__all__ = ["NAMES", "peer_script"]
