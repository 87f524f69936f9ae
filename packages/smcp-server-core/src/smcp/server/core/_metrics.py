"""Counters an operator can scrape; plain attributes, no dependency on a metrics library."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LABEL_LIMIT", "LATENCY_BUCKETS", "OTHER", "OUTCOMES", "BoundedLabels", "ServerMetrics"]

#: How many distinct offices, Computers and tools get a label of their own in the labelled call counts.
LABEL_LIMIT = 20
#: The label value of everything beyond :data:`LABEL_LIMIT`.
OTHER = "other"

#: Upper bounds (seconds) of the relay latency histogram buckets; a final +Inf bucket follows.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

#: How a relayed ``client:*`` request ended.
#: ``ok``: the Computer answered; ``error``: it answered with an ErrorPayload; ``bad_request``,
#: ``forbidden``, ``not_found``: refused by the server; ``timeout``: deadline passed;
#: ``disconnected``: the Computer went away; ``bad_reply``: the reply was not one JSON object;
#: ``shutdown``: the server stopped first; ``too_large``: the reply exceeded ``max_message_size``;
#: ``policy``: refused by the token's scope or the policy hook; ``quota``: refused by a limit;
#: ``internal``: a server bug (see the log).
OUTCOMES: tuple[str, ...] = (
    "ok",
    "error",
    "bad_request",
    "forbidden",
    "not_found",
    "timeout",
    "disconnected",
    "bad_reply",
    "shutdown",
    "policy",
    "quota",
    "internal",
)


class BoundedLabels:
    """Label values of one dimension (office, Computer or tool), at most ``limit`` of them.

    The first ``limit`` distinct values get a label of their own, kept for the life of the server
    so that every exposed counter only grows; every later value is counted as ``"other"``.
    """

    __slots__ = ("limit", "values")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.values: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if value is None:
            return ""
        values = self.values
        if value in values:
            return value
        if len(values) < self.limit:
            values.add(value)
            return value
        return OTHER


def _buckets() -> list[int]:
    return [0] * (len(LATENCY_BUCKETS) + 1)


@dataclass(slots=True)
class ServerMetrics:
    """Live counters of one :class:`~smcp.server.core.SMCPServer`."""

    connections: int = 0
    connections_total: int = 0
    auth_failures_total: int = 0
    version_rejections_total: int = 0
    offices: int = 0
    joins_total: int = 0
    join_failures_total: int = 0
    notifications_total: int = 0
    in_flight: int = 0
    #: Refused connections by reason (``missing_token``, ``expired``, ``bad_signature``, ...).
    auth_failures: dict[str, int] = field(default_factory=dict)
    #: Refusals by limit (``max_connections``, ``calls_per_second``, ...).
    quota_refusals: dict[str, int] = field(default_factory=dict)
    #: Audit records written, and dropped because the audit queue was full.
    audit_records_total: int = 0
    audit_dropped_total: int = 0
    #: Connections dropped because more than ``output_limit`` bytes waited to be sent to them.
    slow_consumer_drops_total: int = 0
    #: ``(event, outcome)`` → count for relayed ``client:*`` requests.
    calls: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Non-relay requests refused with an error (bad payload, role, unknown event).
    rejections: dict[str, int] = field(default_factory=dict)
    #: Cumulative-free bucket counts of relay latency; index ``len(LATENCY_BUCKETS)`` is +Inf.
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    latency_count: int = 0
    #: ``(event, office, computer, tool, outcome)`` → count; offices, Computers and tools bounded
    #: by :class:`BoundedLabels` (``tool`` is ``""`` for events other than ``client:tool_call``).
    labelled_calls: dict[tuple[str, str, str, str, str], int] = field(default_factory=dict)
    label_limit: int = LABEL_LIMIT
    #: event → ``[bucket counts, sum, count]`` of the relay latency of that event.
    event_latency: dict[str, list[Any]] = field(default_factory=dict)
    #: role → sessions in an office with that role (``agent``, ``computer``).
    members: dict[str, int] = field(default_factory=dict)
    _offices: BoundedLabels | None = None
    _computers: BoundedLabels | None = None
    _tools: BoundedLabels | None = None

    def __post_init__(self) -> None:
        self._offices = BoundedLabels(self.label_limit)
        self._computers = BoundedLabels(self.label_limit)
        self._tools = BoundedLabels(self.label_limit)

    def count_labelled(
        self, event: str, office: str | None, computer: str | None, tool: str | None, outcome: str
    ) -> None:
        """Count one answered ``client:*`` request under bounded office/Computer/tool labels."""
        assert self._offices is not None and self._computers is not None and self._tools is not None
        key = (event, self._offices(office), self._computers(computer), self._tools(tool), outcome)
        self.labelled_calls[key] = self.labelled_calls.get(key, 0) + 1

    def member_joined(self, role: str) -> None:
        self.members[role] = self.members.get(role, 0) + 1

    def member_left(self, role: str) -> None:
        self.members[role] = max(0, self.members.get(role, 0) - 1)

    def count_call(self, event: str, outcome: str) -> None:
        key = (event, outcome)
        self.calls[key] = self.calls.get(key, 0) + 1

    def count_auth_failure(self, reason: str) -> None:
        self.auth_failures_total += 1
        self.auth_failures[reason] = self.auth_failures.get(reason, 0) + 1

    def count_rejection(self, event: str) -> None:
        self.rejections[event] = self.rejections.get(event, 0) + 1

    def observe_latency(self, seconds: float, event: str | None = None) -> None:
        index = bisect_left(LATENCY_BUCKETS, seconds)
        self.latency_buckets[index] += 1
        self.latency_sum += seconds
        self.latency_count += 1
        if event is not None:
            per_event = self.event_latency.get(event)
            if per_event is None:
                per_event = self.event_latency[event] = [_buckets(), 0.0, 0]
            per_event[0][index] += 1
            per_event[1] += seconds
            per_event[2] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of every counter."""
        return {
            "connections": self.connections,
            "connections_total": self.connections_total,
            "auth_failures_total": self.auth_failures_total,
            "version_rejections_total": self.version_rejections_total,
            "offices": self.offices,
            "joins_total": self.joins_total,
            "join_failures_total": self.join_failures_total,
            "notifications_total": self.notifications_total,
            "in_flight": self.in_flight,
            "auth_failures": dict(sorted(self.auth_failures.items())),
            "quota_refusals": dict(sorted(self.quota_refusals.items())),
            "audit_records_total": self.audit_records_total,
            "audit_dropped_total": self.audit_dropped_total,
            "slow_consumer_drops_total": self.slow_consumer_drops_total,
            "calls": [{"event": e, "outcome": o, "count": n} for (e, o), n in sorted(self.calls.items())],
            "rejections": dict(sorted(self.rejections.items())),
            "relay_latency": {
                "buckets": list(zip([*LATENCY_BUCKETS, float("inf")], self.latency_buckets, strict=True)),
                "sum": self.latency_sum,
                "count": self.latency_count,
            },
            "labelled_calls": [
                {"event": e, "office": o, "computer": c, "tool": t, "outcome": r, "count": n}
                for (e, o, c, t, r), n in sorted(self.labelled_calls.items())
            ],
            "relay_latency_by_event": {
                event: {"sum": total, "count": count}
                for event, (_, total, count) in sorted(self.event_latency.items())
            },
            "members": dict(sorted(self.members.items())),
        }
