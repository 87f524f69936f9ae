"""The operator console's HTTP side on a real server: credentials, the JSON API, the event stream,
the admin actions (a tool call by hand takes the normal call path: call listeners see it)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from smcp.server.asgi import create_app
from smcp.server.asgi._console_state import Series
from smcp.server.core import FinishedCall, ServerSettings, SMCPServer, TokenAuth
from smcp.testing.server import TOKEN, Harness, serve

pytestmark = pytest.mark.anyio

ADMIN = "admin-secret-1"
BEARER = {"authorization": f"Bearer {ADMIN}"}
TOOLS = [
    {
        "name": "echo",
        "bundle_id": "b",
        "description": "Echo the text",
        "params_schema": {"type": "object"},
        "return_schema": None,
        "meta": {"a2c_tool_meta": json.dumps({"auto_apply": True, "tags": ["demo", "safe"]})},
    },
    {"name": "rm", "bundle_id": "b", "description": "", "params_schema": {}, "return_schema": None},
]


def tools_handler(seen: list[Any], gate: asyncio.Event | None = None) -> Any:
    async def handler(event: str, data: Any) -> Any:
        seen.append((event, data))
        if event == "client:get_tools":
            return {"req_id": data["req_id"], "tools": TOOLS}
        if event == "client:get_config":
            return {
                "servers": {"b": {"name": "b", "type": "stdio", "forbidden_tools": ["rm_rf"]}},
                "inputs": [],
            }
        if gate is not None:
            await asyncio.wait_for(gate.wait(), 10)
        text = json.dumps(data["params"])
        return {"content": [{"type": "text", "text": text}], "isError": False}

    return handler


@asynccontextmanager
async def console(*, actions: bool = False) -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    server = SMCPServer(ServerSettings(), TokenAuth(TOKEN))
    app = create_app(server, admin_token=ADMIN, admin_actions=actions)
    async with serve(app) as url:
        h = Harness(server, url)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            try:
                yield h, http
            finally:
                for p in h.peers:
                    await p.close()


async def wait_until(predicate: Any, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)


async def test_off_without_an_admin_token() -> None:
    app = create_app(settings=ServerSettings(), auth=TokenAuth(TOKEN))
    assert app.console is None
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/console")).status_code == 404
        assert (await http.get("/api/v1/offices", headers=BEARER)).status_code == 404
    with pytest.raises(ValueError, match="admin_token"):
        create_app(settings=ServerSettings(), auth=TokenAuth(TOKEN), admin_actions=True)


async def test_refused_without_the_token_then_login_sets_a_cookie() -> None:
    async with console() as (_, http):
        for headers in ({}, {"authorization": "Bearer wrong"}, {"cookie": "smcp_console=forged"}):
            r = await http.get("/api/v1/offices", headers=headers)
            assert r.status_code == 401, headers
            assert "admin token" in r.json()["error"]
        page = await http.get("/console")
        assert page.status_code == 401 and 'name="token"' in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        bad = await http.post("/console/login", data={"token": "nope"})
        assert bad.status_code == 401 and "Refused" in bad.text and "set-cookie" not in bad.headers
        ok = await http.post("/console/login", data={"token": ADMIN})
        assert ok.status_code == 303 and ok.headers["location"] == "/console"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ADMIN not in cookie
        # the client keeps the cookie: the page and the API now answer
        page = await http.get("/console")
        assert page.status_code == 200 and "console/static/console.js" in page.text
        assert (await http.get("/api/v1/offices")).status_code == 200
        assert (
            (await http.get("/console/static/console.js"))
            .headers["content-type"]
            .startswith("text/javascript")
        )
        assert (await http.get("/console/static/../_console.py")).status_code == 404
        # read-only: actions are refused even with the credential
        r = await http.post("/api/v1/sessions/x/disconnect", headers=BEARER)
        assert r.status_code == 403 and "--admin-actions" in r.json()["error"]
        out = await http.post("/console/logout")
        assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
        assert (await http.get("/api/v1/offices")).status_code == 401


async def test_offices_tools_calls_in_flight_and_stats() -> None:
    seen: list[Any] = []
    gate = asyncio.Event()
    async with console() as (h, http):
        assert (await http.get("/api/v1/offices", headers=BEARER)).json()["offices"] == []
        await h.computer("c1", "o1", handler=tools_handler(seen, gate))
        agent = await h.agent("a1", "o1")
        offices = (await http.get("/api/v1/offices", headers=BEARER)).json()
        assert offices["node"]
        (office,) = offices["offices"]
        assert office["id"] == "o1"
        assert [a["name"] for a in office["agents"]] == ["a1"]
        assert [c["name"] for c in office["computers"]] == ["c1"]
        detail = (await http.get("/api/v1/offices/o1", headers=BEARER)).json()
        echo, rm = detail["computers"][0]["tools"]
        assert echo["name"] == "echo" and echo["auto_apply"] is True and echo["tags"] == ["demo", "safe"]
        assert rm["name"] == "rm" and rm["auto_apply"] is False and rm["tags"] == []
        assert detail["computers"][0]["forbidden"] == ["b/rm_rf"]
        # the console's own questions are not calls: no audit trail or recent list sees them
        assert sorted(e for e, _ in seen) == ["client:get_config", "client:get_tools"]
        assert (await http.get("/api/v1/offices/nope", headers=BEARER)).status_code == 404

        call = asyncio.ensure_future(
            agent.call(
                "client:tool_call",
                {
                    "agent": "a1",
                    "req_id": "r-1",
                    "computer": "c1",
                    "tool_name": "echo",
                    "params": {"x": 1},
                    "timeout": 5,
                },
            )
        )

        async def in_flight() -> bool:
            return bool((await http.get("/api/v1/calls", headers=BEARER)).json()["in_flight"])

        await wait_until(in_flight)
        (pending,) = (await http.get("/api/v1/calls", headers=BEARER)).json()["in_flight"]
        assert pending["office"] == "o1" and pending["tool"] == "echo" and pending["req_id"] == "r-1"
        assert pending["age_s"] >= 0
        gate.set()
        assert (await asyncio.wait_for(call, 5))[0]["isError"] is False
        calls = (await http.get("/api/v1/calls?limit=5", headers=BEARER)).json()
        assert calls["in_flight"] == []
        (done,) = calls["recent"]
        assert done["outcome"] == "ok" and done["tool"] == "echo" and done["agent"] == "a1"
        assert done["principal"] == "token" and done["office"] == "o1" and done["duration_ms"] > 0
        assert (await http.get("/api/v1/calls?limit=0", headers=BEARER)).json()["recent"] == []
        assert (await http.get("/api/v1/calls?limit=x", headers=BEARER)).status_code == 400
        stats = (await http.get("/api/v1/stats", headers=BEARER)).json()
        assert stats["connections"] == {"total": 2, "agents": 1, "computers": 1, "not_in_office": 0}
        assert stats["offices"] == 1 and stats["calls_total"] == 1 and stats["actions"] is False
        series = stats["series"]
        assert len(series["calls"]) == 900 and sum(series["calls"]) == 1
        assert [v for v in series["latency_avg_ms"] if v is not None]


async def test_event_stream_sends_snapshots() -> None:
    async with console() as (h, http):
        await h.computer("c1", "o1", handler=tools_handler([]))
        async with http.stream("GET", "/api/v1/events", headers=BEARER) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            event = None
            async with asyncio.timeout(5):
                async for line in r.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "snapshot":
                        snap = json.loads(line[6:])
                        break
        assert snap["offices"][0]["id"] == "o1"
        assert {"stats", "offices", "in_flight", "recent"} <= set(snap)
        assert (await http.get("/api/v1/events")).status_code == 401


async def test_admin_call_takes_the_normal_call_path_and_disconnect() -> None:
    seen: list[Any] = []
    finished: list[FinishedCall] = []
    async with console(actions=True) as (h, http):
        h.server.add_call_listener(finished.append)  # as the audit trail does
        computer = await h.computer("c1", "o1", handler=tools_handler(seen))
        await h.agent("a1", "o1")
        body = {"tool": "echo", "params": {"text": "hi"}, "timeout": 5}
        # a browser (cookie) must send the console's header: no cross-site form can
        await http.post("/console/login", data={"token": ADMIN})
        r = await http.post("/api/v1/offices/o1/computers/c1/call", json=body)
        assert r.status_code == 403 and "x-smcp-console" in r.json()["error"]
        r = await http.post(
            "/api/v1/offices/o1/computers/c1/call", json=body, headers={"x-smcp-console": "1"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["answer"]["content"][0]["text"] == '{"text": "hi"}'
        event, data = seen[-1]
        assert (
            event == "client:tool_call"
            and data["agent"] == "console-admin"
            and data["params"] == {"text": "hi"}
        )
        (call,) = finished
        assert call.event == "client:tool_call" and call.outcome == "ok" and call.tool == "echo"
        assert call.principal is not None and call.principal.id == "console-admin"
        assert call.office == "o1" and call.agent == "console-admin" and call.computer == "c1"
        assert h.server.metrics.calls[("client:tool_call", "ok")] == 1
        recent = (await http.get("/api/v1/calls", headers=BEARER)).json()["recent"]
        assert recent[0]["principal"] == "console-admin"
        # not a member: the office still has one agent, and nobody was told of a join
        office = (await http.get("/api/v1/offices/o1", headers=BEARER)).json()
        assert [a["name"] for a in office["agents"]] == ["a1"]
        # refusals of the normal path: unknown computer; bad bodies
        r = await http.post("/api/v1/offices/o1/computers/nope/call", json=body, headers=BEARER)
        assert r.status_code == 200 and r.json()["answer"]["code"] == 404
        assert finished[-1].outcome == "not_found"
        for bad in ({"params": {}}, {"tool": "echo", "params": []}, {"tool": "echo", "timeout": 0}):
            r = await http.post("/api/v1/offices/o1/computers/c1/call", json=bad, headers=BEARER)
            assert r.status_code == 400, bad
        # disconnect a session
        sid = computer.sio.get_sid("/smcp")
        r = await http.post(f"/api/v1/sessions/{sid}/disconnect", headers=BEARER)
        assert r.status_code == 200 and r.json() == {"disconnected": sid}

        async def gone() -> bool:
            return await h.server.registry.get(sid) is None

        await wait_until(gone)
        assert (await http.post(f"/api/v1/sessions/{sid}/disconnect", headers=BEARER)).status_code == 404


async def test_mounted_under_a_prefix() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    smcp_app = create_app(settings=ServerSettings(), auth=TokenAuth(TOKEN), admin_token=ADMIN)
    async with serve(Starlette(routes=[Mount("/ops/smcp", app=smcp_app)])) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            page = await http.get("/ops/smcp/console")
            assert page.status_code == 401 and '<base href="/ops/smcp/">' in page.text
            ok = await http.post("/ops/smcp/console/login", data={"token": ADMIN})
            assert ok.status_code == 303 and ok.headers["location"] == "/ops/smcp/console"
            assert "Path=/ops/smcp/;" in ok.headers["set-cookie"]
            assert (await http.get("/ops/smcp/api/v1/stats")).json()["connections"]["total"] == 0
            assert (await http.get("/ops/smcp/console/static/console.css")).status_code == 200
            assert (await http.get("/ops/smcp/console/")).headers["location"] == "/ops/smcp/console"
        await smcp_app.shutdown()


def test_series_buckets_wrap_and_average() -> None:
    now = [1000.0]
    series = Series(window=10, clock=lambda: now[0])
    series.add(995.2, 0.010, True)
    series.add(995.7, 0.030, False)
    series.add(1000.1, 0.005, True)
    snap = series.snapshot()
    assert snap["end"] == 1000 and len(snap["calls"]) == 10
    assert snap["calls"][-6] == 2 and snap["errors"][-6] == 1
    assert snap["latency_avg_ms"][-6] == 20.0 and snap["latency_max_ms"][-6] == 30.0
    assert snap["calls"][-1] == 1
    now[0] = 1008.0  # 995 fell out of the window; its slot is reused by 1005 only when written
    series.add(1005.0, 0.001, True)
    snap = series.snapshot()
    assert sum(snap["calls"]) == 2 and snap["latency_avg_ms"][0] is None


@pytest.mark.parametrize(
    ("args", "env", "token", "problem"),
    [
        ([], {}, None, None),
        ([], {"SMCP_ADMIN_TOKEN": "from-env"}, "from-env", None),
        (["--admin-token", "from-cli"], {"SMCP_ADMIN_TOKEN": "from-env"}, "from-cli", None),
        (["--admin-token-file", "{file}", "--admin-token", "x"], {}, "from-file", None),
        (["--admin-actions"], {}, None, "--admin-actions needs an admin token"),
        (["--admin-token-file", "/nonexistent/token"], {}, None, "cannot read --admin-token-file"),
        (["--admin-token-file", "{empty}"], {}, None, "is empty"),
    ],
)
def test_cli_admin_token_sources(
    args: list[str],
    env: dict[str, str],
    token: str | None,
    problem: str | None,
    tmp_path: Any,
    monkeypatch: Any,
) -> None:
    from smcp.server.asgi.cli import _admin_token, build_parser, main

    (tmp_path / "token").write_text("from-file\n")
    (tmp_path / "empty").write_text("\n")
    argv = [a.format(file=tmp_path / "token", empty=tmp_path / "empty") for a in args]
    monkeypatch.delenv("SMCP_ADMIN_TOKEN", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    got, said = _admin_token(build_parser().parse_args(argv))
    assert (got, said is None) == (token, problem is None)
    if problem is not None:
        assert problem in (said or "")
        assert main(["--token", "t", *argv]) == 2


async def test_cli_console_from_env_and_sigterm_ends_open_streams() -> None:
    env = {**{k: v for k, v in os.environ.items() if k != "SMCP_ADMIN_TOKEN"}, "SMCP_ADMIN_TOKEN": ADMIN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smcp.server.asgi.cli", "--port", "0", "--token", "t",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        async with asyncio.timeout(30):
            while not lines or not lines[-1].startswith("LISTENING "):
                line = (await proc.stdout.readline()).decode()
                assert line, lines
                lines.append(line.strip())
        assert any("operator console at http://" in line and "read-only" in line for line in lines)
        url = f"http://127.0.0.1:{lines[-1].split()[1]}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            ok = await http.get("/api/v1/stats", headers=BEARER)
            assert ok.status_code == 200 and ok.json()["actions"] is False
            assert (await http.get("/api/v1/stats", headers={"authorization": "Bearer t"})).status_code == 401
            async with http.stream("GET", "/api/v1/events", headers=BEARER) as r:
                async with asyncio.timeout(5):
                    async for text in r.aiter_lines():
                        if text.startswith("data: "):
                            break
                proc.send_signal(signal.SIGTERM)
                # the stream ends with the server instead of holding its shutdown
                assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 10)
