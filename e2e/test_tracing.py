"""One trace per tool call across Agent → Server → Computer → MCP server, each in its own process.

Every process exports its spans over OTLP/HTTP (the commands set the SDK up from ``OTEL_*``
variables) to a collector this test runs on 127.0.0.1; the trace context travels in the SMCP
request's ``_meta`` and on to the MCP request's ``params._meta``. The same processes log with
``--log-format json``. The matrix part runs the official 0.4.2 server and Agent with ``_meta``
present: nothing breaks, and the trace restarts at the Computer.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from smcp.testing import roles
from smcp.testing.mcp_config import stdio_server_entry, write_mcp_json
from smcp.testing.processes import ProcessManager

from .harness.matrix import OUR_PEERS_DIR, AgentUnderTest, start_server
from .harness.otlp import Collector, Span, collector

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SERVER, CLIENT = 2, 3  # OTLP span kinds
ERROR = 2  # OTLP status code


def otel_env(sink: Collector) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_SERVICE_NAME": "",
    }


def traced_toolbox(path: Path, sink: Collector) -> Path:
    entry = stdio_server_entry(
        sys.executable, [str(OUR_PEERS_DIR / "traced_toolbox.py"), "stdio"], env=otel_env(sink)
    )
    return write_mcp_json(path, {"toolbox": entry})


async def agent_cli(url: str, office: str, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    argv = [
        *roles.our_command("smcp-agent", "smcp.agent.cli"),
        "--url", url, "--token", roles.DEFAULT_TOKEN, "--office", office, "--json",
        "--log-format", "json", "--log-level", "INFO", *args,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, env=roles.our_env(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every log line of ``text`` parsed; fails on a line that is not one JSON object."""
    records = []
    for line in text.splitlines():
        if not line.startswith("{"):  # the commands' own output lines, not log records
            continue
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(record), record
        records.append(record)
    return records


def one(spans: list[Span], service: str, kind: int, name: str) -> Span:
    found = [s for s in spans if s.service == service and s.kind == kind and s.name == name]
    assert len(found) == 1, (service, name, [(s.service, s.name) for s in spans])
    return found[0]


def chain_complete(trace_id: str | None, last: str) -> Any:
    def check(spans: list[Span]) -> bool:
        return any(s.service == "mcp-toolbox" and s.name == last for s in spans)

    return check


async def test_one_trace_from_agent_to_mcp_server(procs: ProcessManager, tmp_path: Path) -> None:
    with collector() as sink:
        env = otel_env(sink)
        server = await roles.start_server(
            procs, extra_args=["--log-format", "json", "--log-level", "debug"], env=env
        )
        config = traced_toolbox(tmp_path / "mcp.json", sink)
        computer = await roles.start_computer(
            procs, url=server.url, office="otel", name="box", config=config, env=env,
            extra_args=["--log-format", "json", "--log-level", "DEBUG"],
        )  # fmt: skip

        status, out, err = await agent_cli(
            server.url, "otel", "call", "box", "toolbox__echo", "--params", '{"text": "hi"}', env=env
        )
        assert status == 0, err
        assert "hi" in out
        json_lines(err)

        spans = await asyncio.to_thread(sink.wait_for, chain_complete(None, "tools/call echo"))
        agent = first = one(spans, "smcp-agent", CLIENT, "client:tool_call toolbox__echo")
        trace = [s for s in spans if s.trace_id == agent.trace_id]
        srv = one(trace, "smcp-server", SERVER, "client:tool_call toolbox__echo")
        comp = one(trace, "smcp-computer", SERVER, "client:tool_call toolbox__echo")
        mcp_client = one(trace, "smcp-computer", CLIENT, "MCP send tools/call echo")
        mcp_server = one(trace, "mcp-toolbox", SERVER, "tools/call echo")
        # one trace, each hop the child of the one before
        assert agent.parent_id == ""
        assert srv.parent_id == agent.span_id
        assert comp.parent_id == srv.span_id
        assert mcp_client.parent_id == comp.span_id
        assert mcp_server.parent_id == mcp_client.span_id
        for span in (agent, srv, comp):
            assert span.attributes["rpc.system.name"] == "smcp"
            assert span.attributes["rpc.method"] == "client:tool_call"
            assert span.attributes["gen_ai.tool.name"] == "toolbox__echo"
            assert span.attributes["smcp.computer"] == "box"
            assert span.attributes["smcp.req_id"] == agent.attributes["smcp.req_id"]
            assert span.status != ERROR
            assert "text" not in json.dumps(span.attributes)  # never the params
        assert agent.attributes["smcp.office"] == srv.attributes["smcp.office"] == "otel"
        assert srv.attributes["smcp.outcome"] == "ok"
        assert "relay.forward" in srv.events
        assert mcp_server.attributes["mcp.method.name"] == "tools/call"
        # the Computer's join and the Agent's join/notifications are short spans
        assert any(s.service == "smcp-server" and s.name == "notify:enter_office" for s in spans)

        # a call that times out: the Computer's deadline answers; every span says so
        status, out, err = await agent_cli(
            server.url, "otel", "call", "box", "toolbox__slow_echo", "--timeout", "1",
            "--params", '{"text": "late", "seconds": 5}', env=env,
        )  # fmt: skip
        assert status == 1, (out, err)
        spans = await asyncio.to_thread(
            sink.wait_for,
            lambda found: (
                {"smcp-computer", "smcp-agent"}
                <= {s.service for s in found if s.name == "client:tool_call toolbox__slow_echo"}
            ),
        )
        agent = one(spans, "smcp-agent", CLIENT, "client:tool_call toolbox__slow_echo")
        comp = one(spans, "smcp-computer", SERVER, "client:tool_call toolbox__slow_echo")
        assert comp.trace_id == agent.trace_id
        for span in (agent, comp):
            assert span.status == ERROR
            assert span.attributes["error.type"] == "timeout"

    # the request fields and the trace id in the JSON log lines of the server and the Computer
    for proc in (server.proc, computer.proc):
        answered = [r for r in json_lines(proc.log_text()) if r.get("tool") == "toolbox__echo"]
        assert answered, proc.log_text()[-3000:]
        record = answered[0]
        assert record["computer"] == "box" and record["office"] == "otel"
        assert record["req_id"] == first.attributes["smcp.req_id"]
        assert record["trace_id"] == first.trace_id


@pytest.mark.official
async def test_official_server_and_agent_with_meta(
    procs: ProcessManager, tmp_path: Path, official_py: Path
) -> None:
    """The official server drops ``_meta``: the call works and the trace starts at the Computer. The
    official Agent (no ``_meta``) through our traced server and Computer: the trace starts at our
    server."""
    with collector() as sink:
        env = otel_env(sink)
        config = traced_toolbox(tmp_path / "mcp.json", sink)
        official_server, ours = await asyncio.gather(
            start_server(procs, "official"), roles.start_server(procs, name="our-server", env=env)
        )
        await asyncio.gather(
            roles.start_computer(
                procs, url=official_server.url, office="otel", name="box", config=config,
                token=official_server.token, env=env,
            ),
            roles.start_computer(
                procs, url=ours.url, office="o2", name="box2", config=config, env=env, proc_name="computer-2"
            ),
        )  # fmt: skip
        launched = AgentUnderTest.launch(procs, "official", url=ours.url, office="o2", name="offagent")
        (status, out, err), official = await asyncio.gather(
            agent_cli(
                official_server.url,
                "otel",
                "call",
                "box",
                "toolbox__echo",
                "--params",
                '{"text": "hi"}',
                env=env,
            ),
            launched,
        )
        assert status == 0, err
        assert "hi" in out
        assert (await official.call("connect"))["connected"] is True
        assert (await official.call("join"))["ack"] == [True, None]
        answer = await official.tool_call("box2", "toolbox__add", {"a": 2, "b": 3})
        assert "5" in json.dumps(answer["result"]), answer

        def both(spans: list[Span]) -> bool:
            names = {(s.service, s.name) for s in spans}
            wanted = {("mcp-toolbox", "tools/call echo"), ("mcp-toolbox", "tools/call add")}
            wanted |= {
                (service, "client:tool_call toolbox__add") for service in ("smcp-server", "smcp-computer")
            }
            return wanted <= names

        spans = await asyncio.to_thread(sink.wait_for, both)
        agent = one(spans, "smcp-agent", CLIENT, "client:tool_call toolbox__echo")
        comp = one(spans, "smcp-computer", SERVER, "client:tool_call toolbox__echo")
        assert comp.trace_id != agent.trace_id and comp.parent_id == ""
        mcp_server = one(spans, "mcp-toolbox", SERVER, "tools/call echo")
        assert mcp_server.trace_id == comp.trace_id

        srv = one(spans, "smcp-server", SERVER, "client:tool_call toolbox__add")
        comp = one(spans, "smcp-computer", SERVER, "client:tool_call toolbox__add")
        assert srv.parent_id == "" and comp.parent_id == srv.span_id
        assert srv.attributes["smcp.agent"] == "offagent"
