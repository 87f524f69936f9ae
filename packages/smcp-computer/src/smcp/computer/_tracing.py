"""OpenTelemetry spans of the Computer (extra ``smcp-computer[otel]``; only the OpenTelemetry API).

Each ``client:*`` request is answered inside a SERVER span parented by the request's ``_meta``
trace context (docs/protocol.md §5.12). The span is current while the request runs, so the MCP
client's own ``tools/call`` span is its child and carries the context on in the MCP request's
``params._meta``. Nothing here runs unless the application installed a tracer provider.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

from smcp.computer._version import __version__
from smcp.core import tracecontext

__all__ = ["event", "get_tracer", "short_span", "traced_answer"]

NAME = "smcp.computer"


def get_tracer() -> Any:
    return tracecontext.tracer(NAME, __version__)


async def traced_answer(
    tracer: Any, event_name: str, data: Any, computer: str, answer: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind, StatusCode

    headers = tracecontext.carrier(data)
    context = propagate.extract(headers) if headers is not None else None
    attributes: dict[str, Any] = {
        "rpc.system.name": "smcp",
        "rpc.method": event_name,
        "smcp.computer": computer,
    }
    name = event_name
    if isinstance(data, dict):
        if isinstance(data.get("req_id"), str):
            attributes["smcp.req_id"] = data["req_id"]
        if isinstance(data.get("agent"), str):
            attributes["smcp.agent"] = data["agent"]
        tool = data.get("tool_name")
        if isinstance(tool, str):
            attributes["gen_ai.operation.name"] = "execute_tool"
            attributes["gen_ai.tool.name"] = tool
            name = f"{event_name} {tool}"
    with tracer.start_as_current_span(
        name, context=context, kind=SpanKind.SERVER, attributes=attributes, record_exception=False
    ) as span:
        reply = await answer()
        if isinstance(reply, dict) and "isError" not in reply and isinstance(reply.get("code"), int):
            span.set_attributes(
                {"error.type": str(reply["code"]), "rpc.response.status_code": str(reply["code"])}
            )
            span.set_status(StatusCode.ERROR, str(reply.get("message") or reply["code"]))
        elif isinstance(reply, dict) and reply.get("isError") is True:
            meta = reply.get("meta")
            timed_out = isinstance(meta, dict) and bool(meta.get("a2c_timeout"))
            span.set_attribute("error.type", "timeout" if timed_out else "tool_error")
            span.set_status(StatusCode.ERROR)
        return reply


def event(name: str, **attributes: Any) -> None:
    """An event on the current span (e.g. the confirmation gate's decision), if there is one."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is not None:
        trace.get_current_span().add_event(name, {k: v for k, v in attributes.items() if v is not None})


def short_span(name: str, **attributes: Any) -> None:
    """A span of no duration for a connection event (join, reconnect)."""
    tracer = get_tracer()
    if tracer is not None:
        tracer.start_span(name, attributes={k: v for k, v in attributes.items() if v is not None}).end()
