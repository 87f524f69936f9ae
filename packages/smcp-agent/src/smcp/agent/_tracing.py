"""OpenTelemetry spans of the Agent (extra ``smcp-agent[otel]``; only the OpenTelemetry API).

Only used when :func:`smcp.core.tracecontext.tracer` finds a tracer provider the application
installed; otherwise nothing here runs and OpenTelemetry is not imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from smcp.agent._version import __version__
from smcp.core import tracecontext

__all__ = ["get_tracer", "short_span", "traced_request"]

NAME = "smcp.agent"


def get_tracer() -> Any:
    return tracecontext.tracer(NAME, __version__)


def _attributes(event: str, request: Any, office: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"rpc.system.name": "smcp", "rpc.method": event}
    for key, field in (("smcp.computer", "computer"), ("smcp.req_id", "req_id"), ("smcp.agent", "agent")):
        value = getattr(request, field, None)
        if isinstance(value, str):
            attributes[key] = value
    if office is not None:
        attributes["smcp.office"] = office
    tool = getattr(request, "tool_name", None)
    if isinstance(tool, str):
        attributes["gen_ai.operation.name"] = "execute_tool"
        attributes["gen_ai.tool.name"] = tool
    return attributes


async def traced_request(
    tracer: Any,
    event: str,
    request: Any,
    data: dict[str, Any],
    *,
    office: str | None,
    send: Callable[[dict[str, Any]], Awaitable[Any]],
) -> Any:
    """``send(data)`` inside a CLIENT span whose context travels in the request's ``_meta``."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind, StatusCode

    from smcp.core.errors import LocalTimeoutError, is_error_payload

    tool = getattr(request, "tool_name", None)
    name = f"{event} {tool}" if isinstance(tool, str) else event
    with tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=_attributes(event, request, office),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        try:
            reply = await send(tracecontext.with_carrier(data, headers) if headers else data)
        except LocalTimeoutError as exc:
            span.set_attributes({"error.type": "timeout", "smcp.outcome": "timeout"})
            span.set_status(StatusCode.ERROR, str(exc))
            raise
        except BaseException as exc:
            kind = "cancelled" if exc.__class__.__name__ == "CancelledError" else type(exc).__qualname__
            span.set_attributes({"error.type": kind, "smcp.outcome": kind})
            span.set_status(StatusCode.ERROR, str(exc) or kind)
            raise
        if is_error_payload(reply):
            code = reply.get("code")
            span.set_attributes(
                {"error.type": str(code), "rpc.response.status_code": str(code), "smcp.outcome": "error"}
            )
            span.set_status(StatusCode.ERROR, str(reply.get("message") or code))
        elif isinstance(reply, dict) and reply.get("isError") is True:
            timed_out = isinstance(reply.get("meta"), dict) and bool(reply["meta"].get("a2c_timeout"))
            span.set_attributes(
                {"error.type": "timeout" if timed_out else "tool_error", "smcp.outcome": "ok"}
            )
            span.set_status(StatusCode.ERROR)
        else:
            span.set_attribute("smcp.outcome", "ok")
        return reply


def short_span(name: str, **attributes: Any) -> None:
    """A span of no duration for a connection event (join, leave, reconnect, notification)."""
    tracer = get_tracer()
    if tracer is not None:
        tracer.start_span(name, attributes={k: v for k, v in attributes.items() if v is not None}).end()
