"""The bundle_id conformance vectors (data in ``golden/vectors``) and the naming rules."""

from __future__ import annotations

import json
import pathlib
import uuid
from typing import Any

import pytest

from smcp.core import naming

FIXTURES = pathlib.Path(__file__).resolve().parent / "golden" / "vectors"
VECTORS_FILE = FIXTURES / "bundle_id_conformance_vectors.json"


def _vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
    return vectors


def test_all_sixteen_vectors_present() -> None:
    assert len(_vectors()) == 16


@pytest.mark.parametrize("index", range(16))
def test_bundle_id_vector(index: int) -> None:
    vector = _vectors()[index]
    cfg = vector["config"]
    got = naming.resolve_bundle_id(
        vector["name"],
        cfg["type"],
        explicit=cfg.get("bundle_id"),
        command=cfg.get("command", ""),
        args=cfg.get("args", ()),
        env=cfg.get("env"),
        url=cfg.get("url", ""),
        headers=cfg.get("headers"),
    )
    assert got == vector["expected_bundle_id"], vector["desc"]


@pytest.mark.parametrize("bad", ["", "a.b", "a__b", "with space", "é"])
def test_invalid_explicit_bundle_id_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(naming.InvalidBundleIdError):
        naming.resolve_bundle_id("x", "stdio", explicit=bad)


@pytest.mark.parametrize(
    ("bundle", "tool", "alias", "expected"),
    [("srv", "echo", None, "srv__echo"), ("srv", "mark_a", "mark", "srv__mark"), ("a-b", "t", "", "a-b__t")],
)
def test_exposed_tool_name(bundle: str, tool: str, alias: str | None, expected: str) -> None:
    assert naming.exposed_tool_name(bundle, tool, alias) == expected


@pytest.mark.parametrize(
    ("name", "segments"),
    [
        ("pdf-tools", ("pdf-tools",)),
        ("plug:skill-a", ("plug", "skill-a")),
        ("mcp:My_Srv:skill", ("mcp", "My_Srv", "skill")),
    ],
)
def test_skill_names_accepted(name: str, segments: tuple[str, ...]) -> None:
    assert naming.parse_skill_name(name) == segments


@pytest.mark.parametrize(
    "name",
    ["Bad Name", "", "a:b:c", "mcp:a.b:skill", "UPPER", "x" * 65, "a--b", "-a", "mcp:ok:Bad", "a:b:c:d"],
)
def test_skill_names_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid skill name"):
        naming.parse_skill_name(name)


@pytest.mark.parametrize(
    ("input_id", "env"),
    [("token", "A2C_SMCP_token"), ("api-key", "A2C_SMCP_api_key"), ("a.b c", "A2C_SMCP_a_b_c")],
)
def test_input_env_var(input_id: str, env: str) -> None:
    assert naming.input_env_var(input_id) == env


def test_req_ids_are_uuid4_hex_and_unique() -> None:
    ids = {naming.new_req_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    for req_id in ids:
        parsed = uuid.UUID(hex=req_id)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, req_id)
