"""One JSON object per log line, for the ``--log-format json`` option of the three commands.

Each line has ``time`` (UTC, ISO 8601), ``level`` (lower case), ``logger`` and ``message``, then
every field a record carries in its ``extra`` (the request fields ``office``, ``computer``, ``tool``,
``req_id``, ``agent``, ``event``, ``sid`` where they apply; ``office_id``, ``tool_name`` and
``computer_name`` are written under the short names), ``trace_id`` when an OpenTelemetry span is
current, and ``exception`` with the traceback when there is one.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from smcp.core import tracecontext

__all__ = ["FIELDS", "JSONFormatter", "install"]

#: The request fields of a line, when the record has them.
FIELDS = ("office", "computer", "tool", "req_id", "agent", "event", "sid", "trace_id")

_ALIASES = {"office_id": "office", "tool_name": "tool", "computer_name": "computer"}
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
_PLAIN = (str, int, float, bool, type(None))


class JSONFormatter(logging.Formatter):
    """Formats a record as one line of JSON (never raises on odd field values)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name in _STANDARD or name.startswith("_"):
                continue
            key = _ALIASES.get(name, name)
            if key not in line:
                line[key] = value if isinstance(value, _PLAIN) else repr(value)
        if "trace_id" not in line:
            trace_id = tracecontext.current_trace_id()
            if trace_id is not None:
                line["trace_id"] = trace_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def install(level: int | str = logging.INFO, stream: Any = None) -> logging.Handler:
    """Make the root logger write JSON lines to ``stream`` (stderr by default); for commands only."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
