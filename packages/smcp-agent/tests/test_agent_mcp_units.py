"""The MCP bridge's pieces without processes: what the base install imports, names, URIs, options."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest


def test_base_install_imports_no_mcp_stack() -> None:
    code = (
        "import sys, smcp.agent, smcp.agent.cli, smcp.agent.llm; "
        "smcp.agent.AsyncAgent; smcp.agent.Agent; smcp.agent.Toolset; "
        "print([m for m in ('mcp', 'starlette', 'uvicorn', 'sse_starlette') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_mcp_command_without_the_extra_says_what_to_install() -> None:
    # a stand-in that hides the mcp package, as in an install without smcp-agent[mcp]
    code = (
        "import importlib.util, sys; real = importlib.util.find_spec; "
        "importlib.util.find_spec = lambda name, *a: None if name == 'mcp' else real(name, *a); "
        "from smcp.agent.cli import main; main(['--url', 'http://127.0.0.1:9', '--office', 'o', 'mcp'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 1
    assert "smcp-agent[mcp]" in out.stderr


mcp = pytest.importorskip("mcp", reason="the bridge itself needs the mcp package (smcp-agent[mcp])")


def tool(name: str, **fields: Any) -> Any:
    from smcp.core.models import SMCPTool

    base: dict[str, Any] = {
        "name": name,
        "bundle_id": "tb",
        "description": "None",
        "params_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
        "return_schema": None,
    }
    return SMCPTool.model_validate({**base, **fields})


def test_tool_names_follow_the_toolset_rule() -> None:
    from smcp.agent.llm import Toolset
    from smcp.agent.mcp import Catalogue

    long_name = "tb__" + "x" * 80
    pairs = [("c1", tool("tb__echo")), ("c2", tool("tb__echo")), ("c 3", tool(long_name))]
    catalogue = Catalogue(pairs)
    names = list(catalogue.entries)
    assert names == [t.name for t in Toolset(pairs, prefix_computer=True).tools]
    assert names[:2] == ["c1__tb__echo", "c2__tb__echo"]
    assert len(names[2]) == 64 and names[2].startswith("c_3__tb__xxx")
    assert catalogue.entries[names[2]].computer == "c 3"
    assert catalogue.entries[names[2]].exposed == long_name
    # a single Computer keeps the prefix too, so names do not change when a second one joins
    assert list(Catalogue([("c1", tool("tb__echo"))]).entries) == ["c1__tb__echo"]


def test_tools_carry_schemas_annotations_and_titles() -> None:
    import json

    from smcp.agent.mcp import Catalogue

    annotations = {"title": "Echo it", "readOnlyHint": True}
    smcp_tool = tool(
        "tb__echo",
        description="Echo text",
        return_schema={"type": "object", "properties": {"result": {"type": "string"}}},
        meta={"MCP_TOOL_ANNOTATION": json.dumps(annotations), "a2c_tool_meta": '{"tags": ["t"]}'},
    )
    (mcp_tool,) = Catalogue([("c1", smcp_tool)]).tools()
    assert mcp_tool.description == "Echo text"
    assert mcp_tool.title == "Echo it"
    assert mcp_tool.annotations is not None and mcp_tool.annotations.read_only_hint is True
    assert mcp_tool.output_schema == {"type": "object", "properties": {"result": {"type": "string"}}}
    assert mcp_tool.input_schema["properties"] == {"x": {"type": "string"}}
    assert mcp_tool.meta == {
        "smcp": {"computer": "c1", "tool": "tb__echo", "meta": {"a2c_tool_meta": '{"tags": ["t"]}'}}
    }
    # "None" is how 0.4.2 Computers spell a missing description; a non-object output schema is dropped
    (bare,) = Catalogue([("c1", tool("tb__x", return_schema={"type": "string"}))]).tools()
    assert bare.description is None and bare.output_schema is None


def test_signature_changes_with_the_tool_list() -> None:
    from smcp.agent.mcp import Catalogue

    one = Catalogue([("c1", tool("tb__echo"))])
    assert one.signature() == Catalogue([("c1", tool("tb__echo"))]).signature()
    assert one.signature() != Catalogue([("c1", tool("tb__echo", description="new"))]).signature()
    assert one.signature() != Catalogue([]).signature()


@pytest.mark.parametrize(
    ("computer", "uri"),
    [("comp1", "window://toolbox/main"), ("a b/c", "mem://x/y?z=1#f"), ("c", "skill://demo")],
)
def test_resource_uris_round_trip(computer: str, uri: str) -> None:
    from smcp.agent.mcp import bridge_uri, split_uri

    wrapped = bridge_uri(computer, uri)
    assert wrapped.startswith("smcp://")
    assert split_uri(wrapped) == (computer, uri)


def test_foreign_uris_are_not_found() -> None:
    from mcp.shared.exceptions import MCPError

    from smcp.agent.mcp import split_uri

    for uri in ("window://toolbox/main", "smcp://comp1", "smcp:///x"):
        with pytest.raises(MCPError):
            split_uri(uri)


def test_http_option_and_loopback() -> None:
    from smcp.agent.mcp._private.command import parse_http
    from smcp.agent.mcp._private.http import is_loopback
    from smcp.core.errors import ConfigError

    assert parse_http("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_http("[::1]:0") == ("::1", 0)
    for bad in ("8765", "host:", "host:port", ":80", "h:70000"):
        with pytest.raises(ConfigError):
            parse_http(bad)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")


def test_readme_client_configs_are_valid_and_start_the_bridge() -> None:
    import json
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The office as an MCP server", 1)[1].split("\n## ", 1)[0]
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", section, re.S)]
    assert len(blocks) == 2
    claude, vscode = blocks
    for entry in (claude["mcpServers"]["smcp-office"], vscode["servers"]["smcp-office"]):
        assert entry["command"] == "smcp-agent"
        assert entry["args"][-1] == "mcp" and "--office" in entry["args"] and "--url" in entry["args"]
        assert "SMCP_TOKEN" in entry["env"]
    assert vscode["servers"]["smcp-office"]["type"] == "stdio"
    assert vscode["inputs"][0]["id"] in vscode["servers"]["smcp-office"]["env"]["SMCP_TOKEN"]


def test_http_beyond_loopback_needs_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    from smcp.agent.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--url", "http://127.0.0.1:9", "--office", "o", "mcp", "--http", "0.0.0.0:0"])
    assert info.value.code == 2
    assert "--http-token" in capsys.readouterr().err


@pytest.mark.anyio
async def test_only_the_named_computers() -> None:
    from smcp.agent._cache import ComputerCache
    from smcp.agent.mcp import Catalogue

    async def fetch(computer: str, kind: str) -> Any:
        raise AssertionError("no fetch expected")

    async def listener(computer: str, view: Any) -> None:
        return None

    cache = ComputerCache(fetch, listener)
    for computer in ("left", "right"):
        cache.store(computer, "tools", [tool("tb__echo"), tool("tb__plus")])
    assert sorted(Catalogue.from_cache(cache, None).entries) == [
        "left__tb__echo", "left__tb__plus", "right__tb__echo", "right__tb__plus",
    ]  # fmt: skip
    assert sorted(Catalogue.from_cache(cache, {"right"}).entries) == ["right__tb__echo", "right__tb__plus"]
