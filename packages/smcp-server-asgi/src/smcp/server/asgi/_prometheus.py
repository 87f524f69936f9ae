"""Prometheus text exposition of :class:`~smcp.server.core.ServerMetrics`."""

from __future__ import annotations

from smcp.server.core import ServerMetrics
from smcp.server.core._metrics import LATENCY_BUCKETS

__all__ = ["render_prometheus"]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(metrics: ServerMetrics) -> str:
    """The counters in Prometheus text format 0.0.4."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, value: float) -> None:
        lines.extend((f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value:g}"))

    metric("smcp_connections", "gauge", "Connected Socket.IO clients on /smcp.", metrics.connections)
    metric("smcp_connections_total", "counter", "Accepted connections.", metrics.connections_total)
    metric("smcp_auth_failures_total", "counter", "Refused connections (auth).", metrics.auth_failures_total)
    metric(
        "smcp_version_rejections_total",
        "counter",
        "Handshakes refused by the version gate.",
        metrics.version_rejections_total,
    )
    metric("smcp_offices", "gauge", "Offices with at least one member.", metrics.offices)
    metric("smcp_joins_total", "counter", "Successful server:join_office.", metrics.joins_total)
    metric("smcp_join_failures_total", "counter", "Refused server:join_office.", metrics.join_failures_total)
    metric("smcp_notifications_total", "counter", "notify:* broadcasts.", metrics.notifications_total)
    metric("smcp_relay_in_flight", "gauge", "Relayed requests waiting for a Computer.", metrics.in_flight)
    metric(
        "smcp_slow_consumer_drops_total",
        "counter",
        "Connections dropped for having more than the output limit waiting to be sent.",
        metrics.slow_consumer_drops_total,
    )
    lines += [
        "# HELP smcp_calls_total Relayed client:* requests by outcome.",
        "# TYPE smcp_calls_total counter",
    ]
    for (event, outcome), count in sorted(metrics.calls.items()):
        lines.append(f'smcp_calls_total{{event="{_label(event)}",outcome="{outcome}"}} {count}')
    lines += [
        "# HELP smcp_rejections_total Refused server:* and unknown events.",
        "# TYPE smcp_rejections_total counter",
    ]
    for event, count in sorted(metrics.rejections.items()):
        lines.append(f'smcp_rejections_total{{event="{_label(event)}"}} {count}')
    lines += [
        "# HELP smcp_auth_refusals_total Refused connections by reason.",
        "# TYPE smcp_auth_refusals_total counter",
    ]
    for reason, count in sorted(metrics.auth_failures.items()):
        lines.append(f'smcp_auth_refusals_total{{reason="{_label(reason)}"}} {count}')
    lines += [
        "# HELP smcp_quota_refusals_total Connections and requests refused by a limit.",
        "# TYPE smcp_quota_refusals_total counter",
    ]
    for limit, count in sorted(metrics.quota_refusals.items()):
        lines.append(f'smcp_quota_refusals_total{{limit="{_label(limit)}"}} {count}')
    metric("smcp_audit_records_total", "counter", "Audit records written.", metrics.audit_records_total)
    metric(
        "smcp_audit_dropped_total",
        "counter",
        "Audit records dropped because the audit queue was full.",
        metrics.audit_dropped_total,
    )
    lines += [
        "# HELP smcp_relay_latency_seconds Time from forwarding a request to the Computer's answer.",
        "# TYPE smcp_relay_latency_seconds histogram",
    ]
    cumulative = 0
    for bound, count in zip([*LATENCY_BUCKETS, float("inf")], metrics.latency_buckets, strict=True):
        cumulative += count
        le = "+Inf" if bound == float("inf") else f"{bound:g}"
        lines.append(f'smcp_relay_latency_seconds_bucket{{le="{le}"}} {cumulative}')
    lines.append(f"smcp_relay_latency_seconds_sum {metrics.latency_sum:.6f}")
    lines.append(f"smcp_relay_latency_seconds_count {metrics.latency_count}")
    _labelled(lines, metrics)
    return "\n".join(lines) + "\n"


def _labelled(lines: list[str], metrics: ServerMetrics) -> None:
    """Calls by office/Computer/tool, latency by event and members by role."""
    lines += [
        "# HELP smcp_office_calls_total Answered client:* requests by office, Computer, tool and outcome "
        f"(the first {metrics.label_limit} distinct values of each have their own label, the rest are "
        '"other").',
        "# TYPE smcp_office_calls_total counter",
    ]
    for (event, office, computer, tool, outcome), count in sorted(metrics.labelled_calls.items()):
        labels = (
            f'event="{_label(event)}",office="{_label(office)}",computer="{_label(computer)}",'
            f'tool="{_label(tool)}",outcome="{outcome}"'
        )
        lines.append(f"smcp_office_calls_total{{{labels}}} {count}")
    lines += [
        "# HELP smcp_relay_event_latency_seconds Time from forwarding a request to the Computer's answer, "
        "by event.",
        "# TYPE smcp_relay_event_latency_seconds histogram",
    ]
    bounds = [*LATENCY_BUCKETS, float("inf")]
    for event, (buckets, total, count) in sorted(metrics.event_latency.items()):
        name = _label(event)
        cumulative = 0
        for bound, n in zip(bounds, buckets, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'smcp_relay_event_latency_seconds_bucket{{event="{name}",le="{le}"}} {cumulative}')
        lines.append(f'smcp_relay_event_latency_seconds_sum{{event="{name}"}} {total:.6f}')
        lines.append(f'smcp_relay_event_latency_seconds_count{{event="{name}"}} {count}')
    lines += [
        "# HELP smcp_clients Connected clients by role (none: connected, in no office yet).",
        "# TYPE smcp_clients gauge",
    ]
    joined = 0
    for role in ("agent", "computer"):
        count = metrics.members.get(role, 0)
        joined += count
        lines.append(f'smcp_clients{{role="{role}"}} {count}')
    lines.append(f'smcp_clients{{role="none"}} {max(0, metrics.connections - joined)}')
