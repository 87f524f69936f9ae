"""Tracing and JSON logs in one process: the server's span and ``_meta`` forwarding, the Agent's and
the Computer's spans, the trace-context helpers of core, and nothing imported or added when off."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from smcp.core import logjson, tracecontext
from smcp.core.events import ClientEvent
from smcp.server.core import ServerSettings
from smcp.testing.server import TOKEN, running

pytestmark = pytest.mark.anyio

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def spans() -> Iterator[Any]:
    """An SDK tracer provider with an in-memory exporter, installed for this test only."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = trace._TRACER_PROVIDER  # the API sets its global once per process; a test restores it
    trace._TRACER_PROVIDER = provider
    try:
        yield exporter
    finally:
        trace._TRACER_PROVIDER = previous
        provider.shutdown()


def tool_call(req_id: str, timeout: int = 5, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "agent": "agentA", "req_id": req_id, "computer": "comp1", "tool_name": "files__read",
        "params": {"path": "secret.txt"}, "timeout": timeout,
    }  # fmt: skip
    if meta is not None:
        data["_meta"] = meta
    return data


# -- core helpers -------------------------------------------------------------------------------


def test_traceparent_parse_and_carrier() -> None:
    assert tracecontext.parse_traceparent(PARENT) == (TRACE_ID, "b7ad6b7169203331", True)
    for bad in (
        None,
        5,
        "",
        "00-" + "0" * 32 + "-b7ad6b7169203331-01",
        PARENT.upper(),
        PARENT + "-x",
        "ff" + PARENT[2:],
    ):
        assert tracecontext.parse_traceparent(bad) is None, bad
    assert tracecontext.format_traceparent(TRACE_ID, "b7ad6b7169203331") == PARENT
    assert tracecontext.carrier({"_meta": {"traceparent": PARENT, "tracestate": "a=b"}}) == {
        "traceparent": PARENT,
        "tracestate": "a=b",
    }
    assert tracecontext.carrier({"_meta": {"traceparent": "junk"}}) is None
    assert tracecontext.carrier({"_meta": "x"}) is None and tracecontext.carrier([1]) is None
    data = {"a": 1, "_meta": {"other": True, "tracestate": "old=1"}}
    out = tracecontext.with_carrier(data, {"traceparent": PARENT})
    assert out == {"a": 1, "_meta": {"other": True, "traceparent": PARENT}}
    assert data["_meta"]["tracestate"] == "old=1"  # not changed in place


def test_off_imports_nothing_and_adds_nothing() -> None:
    """Without a tracer provider the roles neither import OpenTelemetry nor touch the request."""
    code = (
        "import sys, smcp.agent, smcp.server.core, smcp.core.logjson\n"
        "from smcp.core import tracecontext\n"
        "assert tracecontext.tracer('x', '1') is None\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
    )
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


async def test_meta_forwarded_unchanged_when_off() -> None:
    async with running(ServerSettings()) as h:
        seen: list[Any] = []

        def handler(event: str, data: Any) -> Any:
            seen.append(data)
            return {"content": [], "isError": False}

        await h.computer(handler=handler)
        agent = await h.agent()
        meta = {"traceparent": PARENT, "tracestate": "k=v", "custom": 1}
        reply = await agent.call(ClientEvent.TOOL_CALL.value, tool_call("r1", meta=meta))
        assert reply == ({"content": [], "isError": False},)
        assert seen[0]["_meta"] == meta


# -- the server's span --------------------------------------------------------------------------


async def test_server_span_parents_on_meta_and_forwards_its_own(spans: Any) -> None:
    async with running(ServerSettings()) as h:
        seen: list[Any] = []

        def handler(event: str, data: Any) -> Any:
            seen.append(data)
            return {"content": [], "isError": False}

        await h.computer(handler=handler)
        agent = await h.agent()
        await agent.call(ClientEvent.TOOL_CALL.value, tool_call("r1", meta={"traceparent": PARENT, "x": 1}))
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("client:tool_call")]
    assert span.name == "client:tool_call files__read"
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    attributes = dict(span.attributes or {})
    assert attributes["smcp.office"] == "o1" and attributes["smcp.outcome"] == "ok"
    assert attributes["gen_ai.tool.name"] == "files__read" and attributes["smcp.req_id"] == "r1"
    assert "secret" not in json.dumps(attributes)
    forwarded = tracecontext.parse_traceparent(seen[0]["_meta"]["traceparent"])
    assert forwarded is not None and forwarded.trace_id == TRACE_ID
    assert forwarded.span_id == f"{span.context.span_id:016x}"
    assert seen[0]["_meta"]["x"] == 1
    names = {s.name for s in spans.get_finished_spans()}
    assert "notify:enter_office" in names


async def test_relay_timeout_marks_the_server_span_as_error(spans: Any) -> None:
    from opentelemetry.trace import StatusCode

    async with running(ServerSettings(grace=0.2, default_timeout=0.5)) as h:

        async def never(event: str, data: Any) -> Any:
            import asyncio

            await asyncio.sleep(30)

        await h.computer(handler=never)
        agent = await h.agent()
        request = {"agent": "agentA", "req_id": "r2", "computer": "comp1"}
        (reply,) = await agent.call(ClientEvent.GET_TOOLS.value, request, timeout=10)
        assert reply["code"] == 408
    (span,) = [s for s in spans.get_finished_spans() if s.name == "client:get_tools"]
    assert span.status.status_code is StatusCode.ERROR
    assert "did not answer client:get_tools" in (span.status.description or "")
    assert dict(span.attributes or {})["error.type"] == "timeout"
    assert span.parent is None  # no _meta: the trace starts here


# -- the Agent's and the Computer's spans ------------------------------------------------------


async def test_agent_span_injects_meta_and_records_errors(spans: Any) -> None:
    from opentelemetry.trace import SpanKind, StatusCode

    from smcp.agent import AsyncAgent
    from smcp.core.errors import NotFoundError

    async with running(ServerSettings()) as h:
        seen: list[Any] = []

        def handler(event: str, data: Any) -> Any:
            seen.append(data)
            return {"content": [{"type": "text", "text": "ok"}], "isError": False}

        await h.computer(handler=handler)
        async with AsyncAgent(h.url, token=TOKEN, office="o1", name="agentA") as agent:
            await agent.call_tool("comp1", "files__read", {"path": "a"}, timeout=5)
            with pytest.raises(NotFoundError):
                await agent.call_tool("nobody", "files__read", {}, timeout=5)
    finished = spans.get_finished_spans()
    agent_spans = [s for s in finished if s.kind is SpanKind.CLIENT and s.name.startswith("client:tool_call")]
    ok, missing = agent_spans
    assert ok.name == "client:tool_call files__read" and ok.status.status_code is StatusCode.UNSET
    sent = tracecontext.parse_traceparent(seen[0]["_meta"]["traceparent"])
    assert sent is not None and sent.trace_id == f"{ok.context.trace_id:032x}"
    assert missing.status.status_code is StatusCode.ERROR
    assert dict(missing.attributes or {})["rpc.response.status_code"] == "404"
    server_span = next(s for s in finished if s.kind is SpanKind.SERVER and s.name == ok.name)
    assert server_span.parent is not None and server_span.parent.span_id == ok.context.span_id


# -- JSON log lines -----------------------------------------------------------------------------


def test_json_formatter_writes_the_request_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logjson.JSONFormatter())
    log = logging.getLogger("smcp.test.logjson")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning(
            "relay %s", "slow", extra={"office_id": "o1", "computer": "c", "tool_name": "t", "req_id": "r"}
        )
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed", extra={"obj": object()})
    finally:
        log.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "relay slow" and first["level"] == "warning"
    assert first["logger"] == "smcp.test.logjson" and first["time"].endswith("+00:00")
    assert (first["office"], first["computer"], first["tool"], first["req_id"]) == ("o1", "c", "t", "r")
    assert "ValueError: boom" in second["exception"] and second["obj"].startswith("<object")


def test_json_formatter_adds_the_current_trace_id(spans: Any) -> None:
    from opentelemetry import trace

    record = logging.makeLogRecord({"msg": "inside", "levelname": "INFO", "name": "smcp.x"})
    with trace.get_tracer("t").start_as_current_span("s") as span:
        line = json.loads(logjson.JSONFormatter().format(record))
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"
