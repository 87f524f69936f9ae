"""examples/server_fastapi.py serves FastAPI routes and SMCP side by side; imports stay lazy."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from smcp.testing.server import Peer, serve

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "server_fastapi.py"


async def test_fastapi_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMCP_TOKEN", "ex-token")
    spec = importlib.util.spec_from_file_location("smcp_server_fastapi_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    async with serve(module.app) as url:
        agent = Peer(url)
        await agent.connect(token="ex-token")
        try:
            assert await agent.join("agent", "bot", "o1") == (True, None)
            async with httpx.AsyncClient(timeout=10) as http:
                office = (await http.get(f"{url}/offices/o1")).json()
                assert office == {"office_id": "o1", "members": [{"name": "bot", "role": "agent"}]}
                assert (await http.get(f"{url}/healthz")).status_code == 200
                assert (await http.get(f"{url}/docs")).status_code == 200
        finally:
            await agent.close()


@pytest.mark.parametrize("module", ["smcp.server.core", "smcp.server.asgi"])
def test_import_is_cheap(module: str) -> None:
    code = (
        f"import sys; import {module}; "
        "print(sorted(m for m in ('socketio', 'engineio', 'pydantic', 'starlette', 'uvicorn', 'asyncio') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
