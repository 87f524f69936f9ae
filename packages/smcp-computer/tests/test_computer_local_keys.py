"""SDK-local server keys: ``envFile`` (stdio) and ``oauth`` (streamable), with real toolbox processes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from smcp.computer import Computer, ServerState, Supervision, parse_config
from smcp.computer._envfile import parse_env_text

pytestmark = pytest.mark.anyio

TOOLBOX = (
    Path(__file__).resolve().parents[3] / "packages/smcp-testing/src/smcp/testing/mcp_servers/toolbox.py"
)
FAST = Supervision(initial_delay=0.1, max_attempts=3, ping_interval=0)
ONCE = Supervision(enabled=False, ping_interval=0)


def stdio(**extra: Any) -> dict[str, Any]:
    params = {"command": sys.executable, "args": [str(TOOLBOX), "stdio"], **extra.pop("params", {})}
    return {"type": "stdio", "server_parameters": params, "default_tool_meta": {"auto_apply": True}, **extra}


def make(servers: dict[str, Any], tmp_path: Path, supervision: Supervision = FAST) -> Computer:
    loaded = parse_config({"servers": servers})
    assert loaded.ok, loaded.problems
    return Computer("c1", loaded.servers, supervision=supervision, spool_dir=tmp_path / "spool")


async def whoami(computer: Computer, bundle: str) -> str:
    result = await computer.call_tool(f"{bundle}__whoami", {}, timeout=10)
    assert result["isError"] is False, result
    return str(result["content"][0]["text"]) if result["content"] else ""


def test_dotenv_parsing() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "PLAIN=value",
            "export EXPORTED=yes",
            "SPACED = padded value  ",
            "INLINE=abc # trailing comment",
            "HASH=a#b",
            "SINGLE='keep $HOME and \\n literally'",
            'DOUBLE="line\\nnext \\"quoted\\" # not a comment"',
            "EMPTY=",
            "EQUALS=a=b=c",
            "REF=${PLAIN}",
            "not a line",
            "BROKEN='unterminated",
            "1BAD=x",
        ]
    )
    assert parse_env_text(text) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded value",
        "INLINE": "abc",
        "HASH": "a#b",
        "SINGLE": "keep $HOME and \\n literally",
        "DOUBLE": 'line\nnext "quoted" # not a comment',
        "EMPTY": "",
        "EQUALS": "a=b=c",
        "REF": "${PLAIN}",  # values are literal: no expansion
    }


async def test_child_sees_env_file_and_explicit_env_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir = tmp_path / "envs"
    env_dir.mkdir()
    (env_dir / "tag.env").write_text('# toolbox\nexport SMCP_TOOLBOX_TAG="from-file"\nOTHER=1\n')
    monkeypatch.setenv("SMCP_TEST_ENV_DIR", str(env_dir))
    monkeypatch.delenv("SMCP_TOOLBOX_TAG", raising=False)
    servers = {
        "fromfile": stdio(envFile="${env:SMCP_TEST_ENV_DIR}/tag.env"),
        "explicit": stdio(envFile=str(env_dir / "tag.env"), params={"env": {"SMCP_TOOLBOX_TAG": "explicit"}}),
        "none": stdio(),
    }
    computer = make(servers, tmp_path)
    async with asyncio.timeout(60), computer:
        assert all(s.state is ServerState.RUNNING for s in computer.status()), computer.status()
        assert await whoami(computer, "fromfile") == "from-file"
        assert await whoami(computer, "explicit") == "explicit"
        assert await whoami(computer, "none") == ""
        config = computer.config_wire()
        # the file is read at every real start: a changed file takes effect on restart
        (env_dir / "tag.env").write_text("SMCP_TOOLBOX_TAG=changed\n")
        await computer.restart(["fromfile"])
        assert await whoami(computer, "fromfile") == "changed"
    assert set(config["servers"]) == {"fromfile", "explicit", "none"}
    for raw in config["servers"].values():
        assert "envFile" not in raw and "env_file" not in raw
        assert "envFile" not in str(raw)
    assert config["servers"]["explicit"]["server_parameters"]["env"] == {"SMCP_TOOLBOX_TAG": "explicit"}
    assert config["servers"]["fromfile"]["server_parameters"]["env"] is None


async def test_relative_env_file_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "local.env").write_text("SMCP_TOOLBOX_TAG=relative\n")
    monkeypatch.chdir(tmp_path)
    computer = make({"rel": stdio(envFile="local.env")}, tmp_path)
    async with asyncio.timeout(60), computer:
        assert await whoami(computer, "rel") == "relative"


async def test_missing_env_file_fails_the_start_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    computer = make({"box": stdio(envFile=str(missing))}, tmp_path, supervision=ONCE)
    async with asyncio.timeout(60), computer:
        (status,) = computer.status()
        assert status.state is ServerState.FAILED
        assert status.last_error is not None
        assert str(missing) in status.last_error and "'box'" in status.last_error
        assert computer.tools() == []


def test_env_file_problems() -> None:
    loaded = parse_config(
        {
            "servers": {
                "wrongtype": stdio(envFile=["a.env"]),
                "remote": {"type": "sse", "envFile": "a.env", "server_parameters": {"url": "http://h/sse"}},
            }
        },
        source="mcp.json",
    )
    by_path = {p.path: p for p in loaded.problems}
    assert by_path["servers.wrongtype.envFile"].severity == "error"
    assert by_path["servers.remote.envFile"].severity == "warning"
    assert "stdio servers only" in by_path["servers.remote.envFile"].message
    assert [s.name for s in loaded.servers] == ["remote"]


def test_oauth_key_is_accepted_with_a_warning() -> None:
    oauth = {"client_id": "abc", "scopes": ["read"]}
    loaded = parse_config(
        {
            "servers": {
                "api": {"type": "streamable", "oauth": oauth, "server_parameters": {"url": "http://h/mcp"}},
                "local": stdio(oauth=oauth),
            }
        },
        source="mcp.json",
    )
    assert loaded.ok
    assert [s.name for s in loaded.servers] == ["api", "local"]
    by_path = {p.path: p for p in loaded.problems}
    assert set(by_path) == {"servers.api.oauth", "servers.local.oauth"}
    api = by_path["servers.api.oauth"]
    assert api.severity == "warning"
    assert "not supported" in api.message and "4006/4007" in api.message
    assert "only streamable" in by_path["servers.local.oauth"].message


async def test_oauth_never_reaches_the_wire(http_url: str, tmp_path: Path) -> None:
    servers = {
        "api": {
            "type": "streamable",
            "oauth": {"client_id": "abc", "client_secret": "s3cret"},
            "default_tool_meta": {"auto_apply": True},
            "server_parameters": {"url": http_url},
        }
    }
    loaded = parse_config({"servers": servers})
    assert loaded.ok and [p.path for p in loaded.warnings] == ["servers.api.oauth"]
    computer = Computer("c1", loaded.servers, supervision=FAST, spool_dir=tmp_path / "spool")
    async with asyncio.timeout(60), computer:
        result = await computer.call_tool("api__add", {"a": 1, "b": 2}, timeout=10)
        config = computer.config_wire()
    assert result["content"][0]["text"] == "3"
    raw = config["servers"]["api"]
    assert "oauth" not in raw
    assert "s3cret" not in str(config)
