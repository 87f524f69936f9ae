"""Error hygiene (issue 17): no raw exception text reaches an Agent; planted secrets appear nowhere.

A failure inside the Server or a Computer that is not one of our coded errors may carry paths,
hostnames or secret values: the Agent gets a stable message and code, the detail goes to the log.
The token and a resolved input value are planted and looked for in every log line (at DEBUG),
every answer, the ``client:get_config`` reply and the server's process arguments.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from smcp.computer import Computer, ComputerLink
from smcp.core.models import PromptStringInput
from smcp.server.core import MemoryRegistry, ServerSettings, TokenAuth
from smcp.testing.server import running

pytestmark = pytest.mark.anyio

SECRET_TOKEN = "tok-PLANTED-7f3a9c"
SECRET_VALUE = "val-PLANTED-e41b2d"
LEAK = "leak-PLANTED-/home/alice/.ssh/id_rsa"


class FailingRegistry(MemoryRegistry):
    """A registry whose routing look-up fails with a text that must not reach anyone but the log."""

    async def lookup(self, office: str, name: str) -> Any:
        if name == "boom":
            raise RuntimeError(LEAK)
        return await super().lookup(office, name)


class FailingComputer(Computer):
    """A Computer whose desktop and skills fail with foreign exceptions."""

    async def get_desktop(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError(LEAK)

    def list_skills(self) -> Any:
        raise KeyError(LEAK)


def frame_trace(record: logging.LogRecord) -> bool:
    """The websockets library's DEBUG trace of every frame (uvicorn logs it as ``< TEXT '...'``): it
    shows the Socket.IO CONNECT packet, auth included, as sent; only ``--log-level debug`` shows it."""
    return (
        record.levelno < logging.INFO
        and record.name.startswith("uvicorn")
        and "TEXT '" in record.getMessage()
    )


def everything(records: list[logging.LogRecord]) -> str:
    return "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in records if not frame_trace(r)
    )


async def test_no_raw_exception_text_reaches_an_agent_and_no_secret_anywhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = TokenAuth(SECRET_TOKEN)
    async with running(ServerSettings(), auth=auth, registry=FailingRegistry()) as smcp:
        computer = FailingComputer(
            "laptop", inputs=[PromptStringInput(id="api_key", description="key", password=True)]
        )
        computer.resolver.set_value("api_key", SECRET_VALUE)
        link = ComputerLink(computer, smcp.url, token=SECRET_TOKEN)
        async with computer:
            await link.connect()
            await link.join("o1")
            agent = await smcp.peer(connect=False)
            await agent.connect(token=SECRET_TOKEN)
            assert await agent.join("agent", "a1") == (True, None)
            base = {"agent": "a1", "req_id": "r1"}
            answers = []
            # the server's own failure: a stable 500
            (server_fail,) = await agent.call("client:get_tools", {**base, "computer": "boom"})
            assert server_fail["code"] == 500
            assert "see the server log" in server_fail["message"]
            answers.append(server_fail)
            # the Computer's failures: a stable message naming what failed, no foreign text
            (desktop,) = await agent.call("client:get_desktop", {**base, "computer": "laptop"})
            (skills,) = await agent.call("client:get_skills", {**base, "computer": "laptop"})
            for answer in (desktop, skills):
                assert answer["code"] == 404
                assert "the detail is in the Computer's log" in answer["message"]
                answers.append(answer)
            (config,) = await agent.call("client:get_config", {**base, "computer": "laptop"})
            answers.append(config)
            assert [i["id"] for i in config["inputs"]] == ["api_key"]
            await link.close()
    text = json.dumps(answers)
    assert LEAK not in text and "Traceback" not in text
    assert SECRET_VALUE not in text and SECRET_TOKEN not in text
    logged = everything(caplog.records)
    assert LEAK in logged, "the detail must be in the log"
    assert SECRET_TOKEN not in logged, [
        f"{r.name}: {r.getMessage()[:300]}" for r in caplog.records if SECRET_TOKEN in everything([r])
    ][:3]
    assert SECRET_VALUE not in logged


def test_the_server_process_keeps_its_token_out_of_its_argument_list() -> None:
    """``SMCP_TOKEN`` in the environment is how the documented quick start passes it."""
    env = {**os.environ, "SMCP_TOKEN": SECRET_TOKEN}
    argv = [sys.executable, "-m", "smcp.server.asgi.cli", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = ""
        for _ in range(20):
            line += proc.stdout.readline()
            if re.search(r"^LISTENING \d+", line, re.M):
                break
        assert re.search(r"^LISTENING \d+", line, re.M), line
        with open(f"/proc/{proc.pid}/cmdline", "rb") as fh:
            cmdline = fh.read().decode()
        assert SECRET_TOKEN not in cmdline
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert SECRET_TOKEN not in line + out
