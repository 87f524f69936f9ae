"""The audit trail: one record per call (ok, error, timeout, cancelled, policy), joins, leaves, refused
connects; file, logger and callable sinks; rotation; a full queue drops and counts; no secrets anywhere."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import socketio

from smcp.server.core import AuditTrail, FileSink, JWTAuth, LoggerSink, ServerSettings, issue_token
from smcp.testing.server import NS, running

pytest.importorskip("jwt", reason="PyJWT (smcp-server-core[jwt]) is not installed")

pytestmark = pytest.mark.anyio

SECRET = "s3cret-for-tests-only-0123456789abcdef"
INPUT = "hunter2-input-value-7f3a"
PARAMS = {"password": INPUT, "n": 1}


def call(tool: str, req_id: str, timeout: int = 5) -> dict[str, Any]:
    return {
        "agent": "alice",
        "req_id": req_id,
        "computer": "comp1",
        "tool_name": tool,
        "params": PARAMS,
        "timeout": timeout,
    }


async def test_one_record_per_call_and_no_secret_anywhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="smcp")
    path = tmp_path / "audit.jsonl"
    seen: list[dict[str, Any]] = []
    trail = AuditTrail(FileSink(path), LoggerSink(), lambda record, line: seen.append(record))
    cancel = asyncio.Event()

    async def handler(event: str, data: Any) -> Any:
        tool = data["tool_name"]
        if tool == "fail":
            return {"code": 404, "message": "no such thing"}
        if tool == "slow":
            await asyncio.sleep(10)
        if tool == "cancel_me":
            await asyncio.wait_for(cancel.wait(), 5)
            return {"content": [{"type": "text", "text": "cancelled"}], "isError": True}
        return {"content": [{"type": "text", "text": f"echo {INPUT}"}], "isError": False}

    agent_token = issue_token(
        SECRET, sub="alice", role="agent", offices=["o1"], tools=["ok", "fail", "slow", "cancel_me"]
    )
    computer_token = issue_token(SECRET, sub="box-1", role="computer", offices=["o1"])
    async with running(ServerSettings(grace=0.1), auth=JWTAuth(secret=SECRET)) as h:
        trail.attach(h.server)
        comp = await h.peer(connect=False)
        comp.serve_requests(handler)
        await comp.connect(token=computer_token)
        assert await comp.join("computer", "comp1") == (True, None)
        agent = await h.peer(token=agent_token)
        assert await agent.join("agent", "alice") == (True, None)
        await agent.call("client:tool_call", call("ok", "r-ok"))
        await agent.call("client:tool_call", call("fail", "r-err"))
        await agent.call("client:tool_call", call("slow", "r-late", timeout=1), timeout=10)
        pending = asyncio.ensure_future(agent.call("client:tool_call", call("cancel_me", "r-cancel")))
        await asyncio.sleep(0.1)
        assert await agent.call("server:tool_call_cancel", {"agent": "alice", "req_id": "r-cancel"}) == ()
        await comp.wait_for("notify:tool_call_cancel")
        cancel.set()
        await pending
        (refused,) = await agent.call("client:tool_call", call("rm_rf", "r-policy"))
        assert refused["code"] == 403
        # a refused connect, then a leave
        bad = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await bad.connect(
                f"{h.url}?a2c_version=0.4.0",
                auth={"token": agent_token[:-4] + "AAAA"},
                namespaces=[NS],
                transports=["websocket"],
                wait_timeout=5,
            )
        assert await agent.call("server:leave_office", {"office_id": "o1"}) == (True, None)
        assert trail.drain(5)
        from smcp.server.asgi._prometheus import render_prometheus

        exposition = render_prometheus(h.server.metrics)
        snapshot = json.dumps(h.server.metrics.snapshot())
    trail.close()

    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records == seen
    calls = {r["req_id"]: r for r in records if r["kind"] == "call"}
    assert {k: v["outcome"] for k, v in calls.items()} == {
        "r-ok": "ok",
        "r-err": "error",
        "r-late": "timeout",
        "r-cancel": "cancelled",
        "r-policy": "policy",
    }
    ok = calls["r-ok"]
    digest = hashlib.sha256(json.dumps(PARAMS, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert ok["params_sha256"] == digest
    assert (ok["principal"], ok["office"], ok["agent"], ok["computer"], ok["tool"], ok["code"]) == (
        "alice",
        "o1",
        "alice",
        "comp1",
        "ok",
        None,
    )
    assert ok["request_bytes"] > 0 and ok["result_bytes"] > 0 and ok["duration_ms"] >= 0
    assert ok["ts"].endswith("Z") and ok["event"] == "client:tool_call"
    assert (
        calls["r-err"]["code"] == 404 and calls["r-late"]["code"] == 408 and calls["r-policy"]["code"] == 403
    )
    kinds = [r["kind"] for r in records if r["kind"] != "call"]
    assert kinds == ["join", "join", "connect_refused", "leave", "leave"]
    leaves = [(r["principal"], r["why"]) for r in records if r["kind"] == "leave"]
    assert leaves == [("alice", "left"), ("box-1", "disconnected")]  # the second when the test ends
    refused_connect = next(r for r in records if r["kind"] == "connect_refused")
    assert refused_connect["reason"] == "bad_signature"
    joins = [(r["principal"], r["role"], r["name"]) for r in records if r["kind"] == "join"]
    assert joins == [("box-1", "computer", "comp1"), ("alice", "agent", "alice")]
    assert "smcp_audit_records_total 9" in exposition
    assert 'smcp_auth_refusals_total{reason="bad_signature"} 1' in exposition
    logged = [r.getMessage() for r in caplog.records]
    assert sum(1 for m in logged if '"kind":"call"' in m) == 5
    everything = "\n".join([path.read_text(), *logged, exposition, snapshot])
    for secret in (agent_token, computer_token, SECRET, INPUT, json.dumps(PARAMS)):
        assert secret not in everything


async def test_full_queue_drops_and_counts_and_reopen_follows_rotation(tmp_path: Path) -> None:
    import threading

    gate = threading.Event()
    path = tmp_path / "audit.jsonl"

    def blocking(record: dict[str, Any], line: str) -> None:
        gate.wait(5)

    trail = AuditTrail(blocking, FileSink(path), queue_size=2)
    async with running() as h:
        trail.attach(h.server)
        await h.computer()
        agent = await h.agent()
        for i in range(6):
            await agent.call("client:get_tools", {"agent": "agentA", "req_id": f"g{i}", "computer": "comp1"})
        assert h.server.metrics.audit_dropped_total >= 2  # the writer holds one, the queue two
        gate.set()
        assert trail.drain(5)
        written = len(path.read_text().splitlines())
        assert written + h.server.metrics.audit_dropped_total == 6 + 2  # calls and two joins
        path.rename(tmp_path / "audit.jsonl.1")
        trail.reopen()
        await agent.call("client:get_tools", {"agent": "agentA", "req_id": "after", "computer": "comp1"})
        assert trail.drain(5)
    trail.close()
    rotated = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["req_id"] for r in rotated if r["kind"] == "call"] == ["after"]
    assert {r["kind"] for r in rotated} == {"call", "leave"}  # the leaves: the test's peers closing


def test_file_sink_starts_a_new_file_after_rotation_with_or_without_reopen(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = FileSink(path)
    sink({}, '{"n":1}')
    sink.flush()
    path.rename(tmp_path / "audit.jsonl.1")  # rotated, no SIGHUP yet
    sink({}, '{"n":2}')
    sink.flush()
    assert (tmp_path / "audit.jsonl.1").read_text() == '{"n":1}\n'
    assert path.read_text() == '{"n":2}\n'
    path.unlink()  # deleted
    sink({}, '{"n":3}')
    sink.reopen()  # the SIGHUP arriving late changes nothing more than a reopen
    sink({}, '{"n":4}')
    sink.close()
    assert path.read_text() == '{"n":3}\n{"n":4}\n'
