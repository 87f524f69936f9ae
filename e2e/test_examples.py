"""Every file under examples/ runs as a user would run it, as a real process against a real server.

The demo (examples/demo) has its own test, e2e/test_demo.py. Here: the embedded Computer serves an
office, the LLM loop calls one of its tools, and the FastAPI example hosts both; the failure paths
say what to do instead of a traceback.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from .harness import ManagedProcess, ProcessManager

pytestmark = pytest.mark.anyio

TOKEN = "examples-secret"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 60.0


def example(name: str, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / name), *args]


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "SMCP_TOKEN"}
    return {**base, "PYTHONUNBUFFERED": "1", **extra}


async def smcp_server(procs: ProcessManager) -> str:
    script = shutil.which("smcp-server", path=str(Path(sys.executable).parent))
    argv = [script] if script else [sys.executable, "-m", "smcp.server.asgi.cli"]
    argv += ["--host", "127.0.0.1", "--port", "0", "--token", TOKEN]
    server = await procs.astart("smcp-server", argv, ready=r"LISTENING (\d+)", timeout=TIMEOUT, env=env())
    return f"http://127.0.0.1:{server.port}"


async def fastapi_server(procs: ProcessManager) -> str:
    argv = example("server_fastapi.py", "--host", "127.0.0.1", "--port", "0")
    server = await procs.astart(
        "server_fastapi", argv, ready=r"LISTENING (\d+)", timeout=TIMEOUT, env=env(SMCP_TOKEN=TOKEN)
    )
    return f"http://127.0.0.1:{server.port}"


async def embedded_computer(procs: ProcessManager, url: str, office: str) -> ManagedProcess:
    argv = example("computer_embedded.py", "--url", url, "--token", TOKEN, "--office", office)
    computer = await procs.astart(
        "computer_embedded", argv, ready=rf"SERVING {office} with \d+ tools", timeout=TIMEOUT, env=env()
    )
    assert computer.ready_match is not None
    assert computer.ready_match.group(0) == f"SERVING {office} with 4 tools"
    return computer


async def llm_loop(procs: ProcessManager, url: str, office: str, question: str) -> tuple[int, str, str]:
    argv = example(
        "agent_llm_loop.py", "--url", url, "--token", TOKEN, "--office", office, "--question", question
    )
    proc = await procs.astart("agent_llm_loop", argv, ready=None, env=env())
    code = await proc.await_exit(TIMEOUT)
    return code, "\n".join(proc.lines()), proc.log_text()


async def test_llm_loop_calls_the_embedded_computer_through_smcp_server(procs: ProcessManager) -> None:
    url = await smcp_server(procs)
    computer = await embedded_computer(procs, url, "o1")
    code, out, log = await llm_loop(procs, url, "o1", "(17 + 25) * 3 / 7")
    assert code == 0, log
    assert out.splitlines()[-1] == "The tool said: 18.0"
    await computer.await_log(r"running desk__calculate", TIMEOUT)  # its confirm callback decided
    assert computer.stop() == 0, computer.log_text()  # SIGTERM: a clean stop


async def test_fastapi_example_hosts_the_other_examples(procs: ProcessManager) -> None:
    url = await fastapi_server(procs)
    await embedded_computer(procs, url, "o2")
    code, out, log = await llm_loop(procs, url, "o2", "6 * 7")
    assert code == 0, log
    assert out.splitlines()[-1] == "The tool said: 42"
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        office = (await http.get(f"{url}/offices/o2")).json()
        assert office == {"office_id": "o2", "members": [{"name": "embedded", "role": "computer"}]}
        assert (await http.get(f"{url}/docs")).status_code == 200
        assert (await http.get(f"{url}/healthz")).status_code == 200


async def test_fastapi_example_refuses_to_start_without_a_token(procs: ProcessManager) -> None:
    proc = await procs.astart(
        "server_fastapi", example("server_fastapi.py", "--port", "0"), ready=None, env=env()
    )
    assert await proc.await_exit(TIMEOUT) == 2
    log = proc.log_text()
    assert "set SMCP_TOKEN" in log and "Traceback" not in log
    assert not proc.lines()  # it never listened


async def test_llm_loop_without_a_usable_tool_says_what_to_start(procs: ProcessManager) -> None:
    url = await smcp_server(procs)
    code, _, log = await llm_loop(procs, url, "empty-office", "hello")
    assert code == 1, log
    assert "no tool ending in echo or calculate" in log
    assert "examples/computer_embedded.py" in log
    assert "StopIteration" not in log and "Traceback" not in log
