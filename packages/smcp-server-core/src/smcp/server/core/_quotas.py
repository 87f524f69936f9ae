"""Limits on connections and calls, per server, per principal and per connection.

Every refusal names the limit and the setting that raises it and is counted in
``metrics.quota_refusals`` under the limit's name. The state is this process's own (in a cluster
each node enforces its share).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from smcp.core.errors import SMCPError

if TYPE_CHECKING:
    from smcp.server.core._metrics import ServerMetrics
    from smcp.server.core._settings import ServerSettings

__all__ = ["QuotaExceeded", "Quotas"]

#: The ErrorPayload code of a call refused by a limit (HTTP's "Too Many Requests").
TOO_MANY = 429


class QuotaExceeded(SMCPError):
    """A call refused by a limit (429); ``details`` has ``limit`` and, for the rate, ``retry_after``."""

    code = TOO_MANY


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class Quotas:
    """Counts connections and calls in flight; refuses what goes over a limit."""

    def __init__(self, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self._s = settings
        self._metrics = metrics
        self.connections = 0
        self._by_principal: dict[str, int] = {}
        # sid -> principal of the connections this process holds
        self._sids: dict[str, str] = {}
        self._in_flight: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._buckets: dict[str, _Bucket] = {}
        rate = settings.calls_per_second
        self._rate = rate
        self._burst = float(settings.call_burst or (math.ceil(rate) if rate else 0))

    def _refuse(self, limit: str) -> None:
        refusals = self._metrics.quota_refusals
        refusals[limit] = refusals.get(limit, 0) + 1

    # -- connections ------------------------------------------------------------------------------

    def connect(self, principal: str, sid: str) -> str | None:
        """Count a new connection; the refusal message if a limit is reached (nothing counted)."""
        s = self._s
        if self.connections >= s.max_connections:
            self._refuse("max_connections")
            return (
                f"Connection refused by server: it has {s.max_connections} connections, its limit "
                "(max_connections); retry later"
            )
        held = self._by_principal.get(principal, 0)
        if held >= s.max_connections_per_principal:
            self._refuse("max_connections_per_principal")
            return (
                f"Connection refused by server: '{principal}' already has {held} connections, the "
                "limit per principal (max_connections_per_principal); close one first"
            )
        self.connections += 1
        self._by_principal[principal] = held + 1
        self._sids[sid] = principal
        return None

    def disconnect(self, sid: str) -> bool:
        """Forget the connection ``sid``; false if this process did not count it."""
        principal = self._sids.pop(sid, None)
        if principal is None:
            return False
        self.connections -= 1
        self._pending.pop(sid, None)
        held = self._by_principal.get(principal, 0) - 1
        if held > 0:
            self._by_principal[principal] = held
        else:
            self._by_principal.pop(principal, None)
        return True

    # -- calls ------------------------------------------------------------------------------------

    def begin_call(self, sid: str, principal: str, event: str) -> None:
        """Count a call starting; raise :class:`QuotaExceeded` (nothing counted) over a limit."""
        s = self._s
        pending = self._pending.get(sid, 0)
        if pending >= s.max_pending_per_connection:
            self._refuse("max_pending_per_connection")
            raise QuotaExceeded(
                f"{event}: this connection already has {pending} requests waiting for an answer, the "
                "limit (max_pending_per_connection); wait for some answers first",
                details={"event": event, "limit": "max_pending_per_connection"},
            )
        in_flight = self._in_flight.get(principal, 0)
        if in_flight >= s.max_calls_in_flight_per_principal:
            self._refuse("max_calls_in_flight_per_principal")
            raise QuotaExceeded(
                f"{event}: '{principal}' already has {in_flight} calls in flight, the limit per "
                "principal (max_calls_in_flight_per_principal); wait for some answers first",
                details={"event": event, "limit": "max_calls_in_flight_per_principal"},
            )
        if self._rate:
            self._take(principal, event)
        self._pending[sid] = pending + 1
        self._in_flight[principal] = in_flight + 1

    def end_call(self, sid: str, principal: str) -> None:
        pending = self._pending.get(sid, 0) - 1
        if pending > 0:
            self._pending[sid] = pending
        else:
            self._pending.pop(sid, None)
        in_flight = self._in_flight.get(principal, 0) - 1
        if in_flight > 0:
            self._in_flight[principal] = in_flight
        else:
            self._in_flight.pop(principal, None)

    def _take(self, principal: str, event: str) -> None:
        rate = self._rate
        assert rate is not None
        now = time.monotonic()
        bucket = self._buckets.get(principal)
        if bucket is None:
            bucket = self._buckets[principal] = _Bucket(self._burst, now)
        else:
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
        if bucket.tokens < 1.0:
            self._refuse("calls_per_second")
            retry = (1.0 - bucket.tokens) / rate
            raise QuotaExceeded(
                f"{event}: '{principal}' is over {rate:g} calls per second (calls_per_second); "
                f"retry after {retry:.3f} s",
                details={"event": event, "limit": "calls_per_second", "retry_after": round(retry, 3)},
            )
        bucket.tokens -= 1.0
        if len(self._buckets) > 4 * max(1, len(self._by_principal)) + 1024:
            self._prune(now)

    def _prune(self, now: float) -> None:
        idle = self._burst / (self._rate or 1.0)
        for key in [k for k, b in self._buckets.items() if now - b.stamp > idle]:
            del self._buckets[key]
