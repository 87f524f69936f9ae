"""What the operator console knows beyond the registry: calls in flight, recent calls, per-second series.

Fed by the server's call-listener hook (finished calls) and by a thin wrapper around each
``client:*`` handler (calls in flight). Built only when the console is enabled.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smcp.server.core._calls import FinishedCall

__all__ = ["CallLog", "InFlight", "Series"]

#: Seconds of history the charts show (15 minutes).
WINDOW = 900


class Series:
    """A ring of per-second buckets: calls, errors, summed and largest duration."""

    def __init__(self, window: int = WINDOW, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self._clock = clock
        self._second = [-1] * window
        self._calls = [0] * window
        self._errors = [0] * window
        self._sum = [0.0] * window
        self._max = [0.0] * window

    def add(self, at: float, duration: float, ok: bool) -> None:
        second = int(at)
        i = second % self.window
        if self._second[i] != second:
            self._second[i] = second
            self._calls[i] = self._errors[i] = 0
            self._sum[i] = self._max[i] = 0.0
        self._calls[i] += 1
        if not ok:
            self._errors[i] += 1
        self._sum[i] += duration
        self._max[i] = max(self._max[i], duration)

    def snapshot(self) -> dict[str, Any]:
        """The last ``window`` seconds, oldest first (``end`` is the current second)."""
        end = int(self._clock())
        calls: list[int] = []
        errors: list[int] = []
        avg: list[float | None] = []
        peak: list[float | None] = []
        for second in range(end - self.window + 1, end + 1):
            i = second % self.window
            if self._second[i] == second and self._calls[i]:
                n = self._calls[i]
                calls.append(n)
                errors.append(self._errors[i])
                avg.append(round(self._sum[i] / n * 1000, 3))
                peak.append(round(self._max[i] * 1000, 3))
            else:
                calls.append(0)
                errors.append(0)
                avg.append(None)
                peak.append(None)
        return {
            "end": end,
            "step": 1,
            "calls": calls,
            "errors": errors,
            "latency_avg_ms": avg,
            "latency_max_ms": peak,
        }


def describe(call: FinishedCall) -> dict[str, Any]:
    """A finished call as the console shows it (no params, no results)."""
    principal = call.principal
    return {
        "started": round(call.started, 3),
        "event": call.event,
        "office": call.office,
        "agent": call.agent,
        "principal": None if principal is None else principal.id,
        "computer": call.computer,
        "tool": call.tool,
        "req_id": call.req_id,
        "outcome": call.outcome,
        "code": call.code,
        "duration_ms": round(call.duration * 1000, 3),
    }


class CallLog:
    """The last ``size`` finished calls and the per-second series, as one call listener."""

    def __init__(self, size: int = 500) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=size)
        self.series = Series()
        self.total = 0
        #: Called with every finished call after it was recorded (the tool-list cache uses it).
        self.observers: list[Callable[[FinishedCall], None]] = []

    def __call__(self, call: FinishedCall) -> None:
        self.total += 1
        self.recent.append(describe(call))
        self.series.add(call.started + call.duration, call.duration, call.outcome == "ok")
        for observer in self.observers:
            observer(call)

    def last(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` calls, newest first."""
        if limit <= 0:
            return []
        return list(itertools.islice(reversed(self.recent), limit))


class InFlight:
    """``client:*`` requests received and not yet answered, with their age."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[str, str, Any, float, str | None]] = {}
        self._ids = itertools.count()

    def wrap(
        self, event: str, handler: Callable[..., Awaitable[Any]], office: str | None = None
    ) -> Callable[..., Awaitable[Any]]:
        """``handler`` recording each request while it runs (``office``: the sender's, when known)."""
        calls = self._calls
        ids = self._ids

        async def tracked(sid: str, *args: Any) -> Any:
            key = next(ids)
            calls[key] = (event, sid, args[0] if args else None, time.time(), office)
            try:
                return await handler(sid, *args)
            finally:
                del calls[key]

        return tracked

    def __len__(self) -> int:
        return len(self._calls)

    def sids(self) -> set[str]:
        """The senders of the calls in flight."""
        return {entry[1] for entry in self._calls.values()}

    def snapshot(self, office_of: Callable[[str], str | None]) -> list[dict[str, Any]]:
        """Every call in flight, oldest first; ``office_of(sid)`` names the sender's office."""
        now = time.time()
        out: list[dict[str, Any]] = []
        for event, sid, data, started, office in self._calls.values():
            fields = data if isinstance(data, dict) else {}
            out.append(
                {
                    "started": round(started, 3),
                    "age_s": round(now - started, 3),
                    "event": event,
                    "office": office or office_of(sid),
                    "agent": _text(fields.get("agent")),
                    "computer": _text(fields.get("computer")),
                    "tool": _text(fields.get("tool_name")),
                    "req_id": _text(fields.get("req_id")),
                }
            )
        return out


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None
