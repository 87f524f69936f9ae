"""VRL post-processing of tool results (docs/protocol.md §9.5), backed by the optional ``vrl-python`` package.

A server's ``vrl`` script is checked when the configuration is loaded. After each tool call the
result (as on the wire) plus ``tool_name`` and ``parameters`` is run through the script and the
outcome is stored as a JSON string in ``meta["a2c_vrl_transformed"]``. Failures are logged only.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

from smcp.computer._errors import VrlUnavailableError
from smcp.core.results import META_VRL

__all__ = ["EXTRA_HINT", "VRL_META_KEY", "VrlUnavailableError", "apply_vrl", "check_script", "host_timezone"]

logger = logging.getLogger("smcp.computer")

#: Deprecated name of :data:`smcp.core.results.META_VRL`.
VRL_META_KEY = META_VRL
EXTRA_HINT = "install the optional extra: pip install 'smcp-computer[vrl]'"


@dataclass
class _State:
    runtime: Any = None
    #: script source -> compile error text (``None`` once it compiled)
    compiled: dict[str, str | None] = field(default_factory=dict)
    warned_missing: bool = False


_state = _State()


def _module() -> Any:
    try:
        import vrl_python
    except ImportError:
        raise VrlUnavailableError(f"the package vrl-python is not installed; {EXTRA_HINT}") from None
    return vrl_python


def check_script(source: str) -> str | None:
    """The diagnostic text of an invalid script, ``None`` when it is valid.

    Raises :class:`VrlUnavailableError` when ``vrl-python`` is not installed.
    """
    diagnostic = _module().VRLRuntime.check_syntax(source)
    if diagnostic is None:
        return None
    text = str(getattr(diagnostic, "formatted_message", "") or diagnostic).strip()
    return text or "; ".join(getattr(diagnostic, "messages", ())) or "invalid VRL"


def _zone_from_path(path: str) -> str | None:
    marker = "zoneinfo/"
    if marker not in path:
        return None
    zone = path.split(marker, 1)[1]
    for prefix in ("posix/", "right/"):
        zone = zone.removeprefix(prefix)
    return zone or None


def host_timezone() -> str:
    """The host's IANA time zone name: ``$TZ``, the ``/etc/localtime`` link, ``/etc/timezone``, else UTC."""
    tz = os.environ.get("TZ", "").strip().lstrip(":")
    if tz:
        return (_zone_from_path(tz) if tz.startswith("/") else tz) or "UTC"
    try:
        zone = _zone_from_path(os.readlink("/etc/localtime"))
        if zone:
            return zone
    except OSError:
        pass
    try:
        zone = pathlib.Path("/etc/timezone").read_text(encoding="utf-8").strip()
        if zone:
            return zone
    except OSError:
        pass
    return "UTC"


def _get_runtime() -> Any:
    if _state.runtime is None:
        runtime_cls = _module().VRLRuntime
        zone = host_timezone()
        try:
            _state.runtime = runtime_cls(zone)
        except ValueError:
            logger.warning("time zone %r is not known to VRL; using UTC", zone)
            _state.runtime = runtime_cls("UTC")
    return _state.runtime


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def apply_vrl(wire: dict[str, Any], source: str, bundle_id: str, tool: str, params: dict[str, Any]) -> None:
    """Run ``source`` on a successful result (a wire dict, changed in place) and store the outcome."""
    if not source.strip():
        return
    try:
        runtime = _get_runtime()
    except VrlUnavailableError as exc:
        if not _state.warned_missing:
            _state.warned_missing = True
            logger.warning("MCP server %s has a vrl script that is not run: %s", bundle_id, exc)
        return
    compiled = _state.compiled
    if source not in compiled:
        try:
            runtime.compile(source)
            compiled[source] = None
        except Exception as exc:
            compiled[source] = _first_line(exc)
            logger.warning("MCP server %s: the vrl script does not compile: %s", bundle_id, exc)
    if compiled[source] is not None:
        return
    event = {**wire, "tool_name": tool, "parameters": params}
    try:
        processed = runtime.execute(source, event).processed_event
        text = json.dumps(processed, ensure_ascii=False, default=str)
    except Exception as exc:
        logger.warning("MCP server %s: vrl script failed on tool %r: %s", bundle_id, tool, _first_line(exc))
        return
    wire["meta"] = {**(wire.get("meta") or {}), META_VRL: text}
