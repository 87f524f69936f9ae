"""Pending Engine.IO long-polls are woken when their session ends and at shutdown (issue 18).

python-engineio leaves a polling client's pending GET waiting until the heartbeat deadline when the
session is closed without a CLOSE packet: a polling client's ``disconnect()`` took about 30 s and a
shutdown waited for the GETs (uvicorn then cancelled them with an ERROR line).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
import socketio

from smcp.server.core import ServerSettings
from smcp.testing.server import NS, TOKEN, running

pytestmark = pytest.mark.anyio


async def polling_client(url: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        f"{url}?a2c_version=0.4.0",
        auth={"token": TOKEN},
        namespaces=[NS],
        transports=["polling"],
        wait_timeout=5,
    )
    await asyncio.sleep(0.3)  # its next GET is now pending on the server
    return sio


async def test_a_polling_clients_disconnect_returns_at_once() -> None:
    async with running(ServerSettings(ping_interval=25, ping_timeout=20)) as smcp:
        sio = await polling_client(smcp.url)
        started = time.perf_counter()
        await asyncio.wait_for(sio.disconnect(), 15)
        took = time.perf_counter() - started
        await asyncio.sleep(0.1)
        assert smcp.server.metrics.connections == 0
    print(f"\n[long-poll] polling disconnect took {took:.2f} s")
    assert took < 3


async def test_shutdown_wakes_pending_polls(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    started = 0.0
    async with running(ServerSettings(ping_interval=25, ping_timeout=20)) as smcp:
        sio = await polling_client(smcp.url)
        started = time.perf_counter()
        await asyncio.wait_for(smcp.server.shutdown(), 10)
    took = time.perf_counter() - started  # shutdown plus uvicorn's own stop
    with_client = sio.connected
    await sio.disconnect()
    print(f"\n[long-poll] shutdown with a polling client took {took:.2f} s")
    assert took < 3
    # no "Cancel 1 running task(s), timeout graceful shutdown exceeded" from uvicorn
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("uvicorn")]
    assert not with_client


async def test_sigterm_with_a_polling_client_exits_at_once() -> None:
    """``smcp-server`` on SIGTERM: exit status 0 well within 2 s, no uvicorn ERROR (it was 5.3 s)."""
    pytest.importorskip("smcp.server.asgi.cli")
    import os
    import re
    import signal
    import subprocess
    import sys

    argv = [sys.executable, "-m", "smcp.server.asgi.cli", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "SMCP_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = None
        for _ in range(20):
            match = re.match(r"LISTENING (\d+)", proc.stdout.readline())
            if match:
                port = int(match.group(1))
                break
        assert port is not None
        sio = await polling_client(f"http://127.0.0.1:{port}")
        started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 15)
        took = time.perf_counter() - started
        await asyncio.wait_for(sio.disconnect(), 5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.stderr is not None
    errors = [line for line in proc.stderr.read().splitlines() if "ERROR" in line]
    print(f"\n[long-poll] SIGTERM with a polling client: exit {code} in {took:.2f} s")
    assert code == 0
    assert took < 2
    assert not errors, errors


async def test_a_poll_with_a_session_of_a_previous_run_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """A polling client of the server's previous run comes back after a restart: 400, logged at DEBUG."""
    import urllib.error
    import urllib.request

    async with running() as smcp:
        url = f"{smcp.url}/socket.io/?EIO=4&transport=polling&a2c_version=0.4.0&sid=before-the-restart"
        # another server of this process (engineio_logger=False) may have set engineio.server to ERROR
        with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="engineio.server"):
            for _ in range(2):
                with pytest.raises(urllib.error.HTTPError) as refused:
                    await asyncio.to_thread(urllib.request.urlopen, url, timeout=5)
                assert refused.value.code == 400
    engineio = [
        r for r in caplog.records if r.name == "engineio.server" and "Invalid session" in r.getMessage()
    ]
    assert engineio and all(r.levelno < logging.WARNING for r in engineio)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_stock_polling_client_survives_a_burst_of_calls_and_answers() -> None:
    """python-engineio's client posts every queued packet in one payload and refuses a long-poll
    answer of more than 16: the server reads large posts and answers a poll with at most 16."""
    async with running() as smcp:
        await smcp.computer("c1")
        sio = await polling_client(smcp.url)
        try:
            join = {"role": "agent", "name": "a1", "office_id": "o1"}
            ok = await sio.call("server:join_office", join, namespace=NS, timeout=5)
            assert ok in (True, [True, None], (True, None))

            async def call(i: int) -> Any:
                request = {"computer": "c1", "agent": "a1", "req_id": f"r{i}", "tool_name": "t", "params": {}}
                return await sio.call("client:tool_call", request, namespace=NS, timeout=10)

            replies = await asyncio.wait_for(asyncio.gather(*(call(i) for i in range(40))), 20)
            assert len(replies) == 40
            assert sio.connected and sio.transport() == "polling"
        finally:
            await asyncio.wait_for(sio.disconnect(), 15)
