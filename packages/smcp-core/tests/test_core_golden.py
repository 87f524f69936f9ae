"""Golden payloads from the official 0.4.2: parse with our models, write back, compare canonically."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from smcp.core import errors, models, results, versioning, wire

GOLDEN = pathlib.Path(__file__).parent / "golden"


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("file", "model"),
    [
        ("get_tools_ret.json", models.GetToolsRet),
        ("get_config_ret.json", models.GetComputerConfigRet),
        ("list_room_ret.json", models.ListRoomRet),
    ],
)
def test_reply_round_trips_byte_for_byte(file: str, model: type[models.WireModel]) -> None:
    data = golden(file)
    parsed = model.model_validate(data)
    assert canonical(wire.to_wire(parsed)) == canonical(data)


@pytest.mark.parametrize(
    "file", ["tool_result_success.json", "tool_result_unknown.json", "tool_result_cancelled.json"]
)
def test_tool_results_round_trip_through_mcp_types(file: str) -> None:
    data = golden(file)
    assert canonical(results.to_wire(results.from_wire(data))) == canonical(data)


@pytest.mark.parametrize(
    ("built", "file"),
    [
        (results.cancelled_result(), "tool_result_cancelled.json"),
        (
            results.exception_result(
                "Tool 'binsrv__small_image' not found in ExposedToolMapping", "ValueError"
            ),
            "tool_result_unknown.json",
        ),
    ],
)
def test_standard_results_match_official(built: dict[str, Any], file: str) -> None:
    assert canonical(built) == canonical(golden(file))


def test_sideband_item_keeps_both_meta_keys() -> None:
    item = golden("sideband_item.json")
    assert results.content_to_wire(item) == item


def test_mcp_item_meta_moves_to_meta_key() -> None:
    item = {"type": "text", "text": "x", "_meta": {"k": 1}}
    assert results.content_to_wire(item) == {
        "type": "text",
        "text": "x",
        "annotations": None,
        "meta": {"k": 1},
    }


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            errors.NotFoundError("Computer with name 'nope' not found", details={"computer_name": "nope"}),
            {
                "code": 404,
                "message": "Computer with name 'nope' not found",
                "details": {"computer_name": "nope"},
            },
        ),
        (
            errors.MCPServerNotFoundError(fields={"mcp_server": "nope"}),
            {"code": 4014, "message": "MCP Server not registered", "mcp_server": "nope"},
        ),
        (
            errors.SkillNameInvalidError(details={"name": "Bad Name"}),
            {"code": 4016, "message": "Invalid skill name", "details": {"name": "Bad Name"}},
        ),
        (
            errors.BlobNotAccessibleError(details={"reason": "invalid_handle"}),
            {"code": 4018, "message": "Blob not accessible", "details": {"reason": "invalid_handle"}},
        ),
        (
            errors.BlobWriteFailedError("landing root not configured", details={"reason": "forbidden"}),
            {"code": 4019, "message": "landing root not configured", "details": {"reason": "forbidden"}},
        ),
        (
            errors.CapabilityNotSupportedError(fields={"mcp_server": "s", "capability": "resources"}),
            {
                "code": 4015,
                "message": "MCP Server does not support 'resources' capability",
                "mcp_server": "s",
                "capability": "resources",
            },
        ),
    ],
)
def test_error_payloads_match_official(error: errors.SMCPError, expected: dict[str, Any]) -> None:
    assert error.to_payload() == expected
    back = errors.error_from_payload(expected)
    assert type(back) is type(error)
    assert back.to_payload() == expected


@pytest.mark.parametrize(
    ("raw", "body", "header"),
    [
        (None, b'{"code": 400, "message": "Missing a2c_version query parameter"}', None),
        ("", b'{"code": 400, "message": "Missing a2c_version query parameter"}', None),
        ("0.4", b'{"code": 400, "message": "Invalid a2c_version: Invalid version: 0.4"}', None),
        ("abc", b'{"code": 400, "message": "Invalid a2c_version: Invalid version: abc"}', None),
        ("0.4.0-dev", b'{"code": 400, "message": "Invalid a2c_version: Invalid version: 0.4.0-dev"}', None),
        (
            "0.3.9",
            b'{"code": 4008, "message": "Protocol version mismatch", "server_version": "0.4.0", '
            b'"client_version": "0.3.9", "min_supported": "0.4.0", "max_supported": "0.4.999"}',
            "4008",
        ),
    ],
)
def test_version_gate_bodies_are_byte_identical(raw: str | None, body: bytes, header: str | None) -> None:
    rejection = versioning.check_version(raw)
    assert rejection is not None
    assert rejection.status == 400
    assert rejection.body_bytes() == body
    headers = dict(rejection.http_headers())
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(body)).encode()
    assert headers.get(b"x-a2c-error-code") == (header.encode() if header else None)


@pytest.mark.parametrize("raw", ["0.4.0", "0.4.99", "0.4.999"])
def test_version_gate_accepts_same_minor(raw: str) -> None:
    assert versioning.check_version(raw) is None
