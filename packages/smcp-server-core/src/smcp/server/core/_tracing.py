"""OpenTelemetry spans of the server (extra ``smcp-server-core[otel]``; only the OpenTelemetry API).

A relayed ``client:*`` request gets a SERVER span, parented by the ``_meta`` trace context the
Agent sent (docs/protocol.md §5.12); the forwarded request carries this span's context instead,
so the Computer's span is its child. Nothing here runs unless the application installed a tracer
provider (:func:`smcp.core.tracecontext.tracer`).
"""

from __future__ import annotations

from typing import Any

from smcp.core import tracecontext
from smcp.server.core._version import __version__

__all__ = ["finish", "forward", "get_tracer", "short_span", "start"]

NAME = "smcp.server"

#: Outcomes that are the server's or the Computer's failure (a refusal is the caller's).
_ERROR_OUTCOMES = frozenset(
    {"timeout", "disconnected", "bad_reply", "shutdown", "too_large", "internal", "error"}
)


def get_tracer() -> Any:
    return tracecontext.tracer(NAME, __version__)


def start(tracer: Any, event: str, data: Any) -> Any:
    """The (not yet current) span of one relayed request."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    headers = tracecontext.carrier(data)
    context = propagate.extract(headers) if headers is not None else None
    span = tracer.start_span(
        event,
        context=context,
        kind=SpanKind.SERVER,
        attributes={"rpc.system.name": "smcp", "rpc.method": event},
    )
    if isinstance(data, dict):
        attributes = {}
        for key, field in (("smcp.computer", "computer"), ("smcp.req_id", "req_id"), ("smcp.agent", "agent")):
            value = data.get(field)
            if isinstance(value, str):
                attributes[key] = value
        tool = data.get("tool_name")
        if isinstance(tool, str):
            attributes["gen_ai.operation.name"] = "execute_tool"
            attributes["gen_ai.tool.name"] = tool
            span.update_name(f"{event} {tool}")
        span.set_attributes(attributes)
    return span


def forward(span: Any, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with this span's context in ``_meta``, for the Computer; marks the relay's start."""
    from opentelemetry import propagate, trace

    span.add_event("relay.forward")
    headers: dict[str, str] = {}
    propagate.inject(headers, context=trace.set_span_in_context(span))
    return tracecontext.with_carrier(data, headers) if headers else data


def finish(span: Any, session: Any, outcome: str, reply: Any) -> None:
    from opentelemetry.trace import StatusCode

    attributes: dict[str, Any] = {"smcp.outcome": outcome}
    if session is not None and session.office is not None:
        attributes["smcp.office"] = session.office
    message = None
    if isinstance(reply, dict) and "isError" not in reply and isinstance(reply.get("code"), int):
        attributes["rpc.response.status_code"] = str(reply["code"])
        message = reply.get("message")
    if outcome != "ok":
        attributes["error.type"] = outcome
    span.set_attributes(attributes)
    if outcome in _ERROR_OUTCOMES:
        span.set_status(StatusCode.ERROR, str(message) if message else outcome)
    span.end()


def short_span(name: str, **attributes: Any) -> None:
    """A span of no duration for a membership event (join, leave, notification)."""
    tracer = get_tracer()
    if tracer is not None:
        tracer.start_span(name, attributes={k: v for k, v in attributes.items() if v is not None}).end()
