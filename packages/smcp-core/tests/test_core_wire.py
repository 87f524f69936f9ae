"""Parsing requests against the event table, and the models' validation rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from smcp.core import errors, events, models, wire
from smcp.core.roles import Role

BASE = {"agent": "a", "req_id": "r1", "computer": "c1"}
TOOL_CALL = {**BASE, "tool_name": "srv__echo", "params": {"text": "hi"}, "timeout": 5}


@pytest.mark.parametrize(
    ("event", "data", "field", "reason_part"),
    [
        ("client:tool_call", None, "<payload>", "got nothing"),
        ("client:tool_call", [1, 2], "<payload>", "got list"),
        ("client:tool_call", "text", "<payload>", "got str"),
        ("client:tool_call", {**TOOL_CALL, "timeout": 2.5}, "timeout", "fractional"),
        ("client:tool_call", {**TOOL_CALL, "timeout": -1}, "timeout", "greater than or equal"),
        ("client:tool_call", {**TOOL_CALL, "params": None}, "params", "dictionary"),
        (
            "client:tool_call",
            {k: v for k, v in TOOL_CALL.items() if k != "tool_name"},
            "tool_name",
            "required",
        ),
        ("client:tool_call", {**TOOL_CALL, "computer": 7}, "computer", "string"),
        ("client:tool_call", {**TOOL_CALL, "computer": "x" * 300}, "computer", "at most 256"),
        ("client:get_tools", {**BASE, "req_id": "r" * 2000}, "req_id", "at most 1024"),
        (
            "server:join_office",
            {"role": "robot", "name": "n", "office_id": "o"},
            "role",
            "'computer' or 'agent'",
        ),
        ("server:join_office", {"role": "agent", "office_id": "o"}, "name", "required"),
        ("server:leave_office", {}, "office_id", "required"),
        ("server:list_room", {"agent": "a", "req_id": "r"}, "office_id", "required"),
        ("server:update_tool_list", {"computer": None}, "computer", "string"),
        ("server:tool_call_cancel", {"agent": "a"}, "req_id", "required"),
        ("client:get_desktop", {**BASE, "desktop_size": "big"}, "desktop_size", "integer"),
        ("client:put_blob", {**BASE, "chunk_offset": 0, "eof": True}, "blob", "required"),
        ("client:nope", {}, "<event>", "unknown event"),
    ],
)
def test_bad_requests_name_event_field_and_reason(
    event: str, data: object, field: str, reason_part: str
) -> None:
    with pytest.raises(errors.BadRequestError) as info:
        wire.parse_request(event, data)
    payload = info.value.to_payload()
    assert payload["code"] == 400
    assert payload["details"]["event"] == event
    assert payload["details"]["field"] == field
    assert reason_part in payload["details"]["reason"]
    assert payload["message"].startswith(f"{event}: field '{field}': ")


@pytest.mark.parametrize(("raw", "expected"), [(2, 2), (2.0, 2), ("2", 2), (0, 0)])
def test_tool_call_timeout_accepts_what_official_accepts(raw: object, expected: int) -> None:
    req = wire.parse_request("client:tool_call", {**TOOL_CALL, "timeout": raw})
    assert isinstance(req, models.ToolCallReq)
    assert req.timeout == expected


def test_unknown_keys_are_ignored() -> None:
    req = wire.parse_request("client:get_tools", {**BASE, "extra": 1})
    assert wire.to_wire(req) == BASE


def test_every_event_has_a_consistent_spec() -> None:
    names = {e.value for group in (events.ClientEvent, events.ServerEvent, events.NotifyEvent) for e in group}
    assert names == set(events.EVENTS)
    for spec in events.EVENTS.values():
        assert spec.request is not None, spec.name
        if spec.name.startswith("client:"):
            assert spec.senders == frozenset({Role.AGENT})
            assert spec.ack == "object"
            assert spec.timeout == ("tool_call" if spec.name == "client:tool_call" else "default")
        if spec.name.startswith("server:update_"):
            assert spec.senders == frozenset({Role.COMPUTER})
            assert spec.notifies is not None and spec.notifies.value == spec.name.replace(
                "server:", "notify:"
            )
        if spec.name.startswith("notify:"):
            assert spec.senders == frozenset()


def test_may_send_takes_a_role_or_its_value_and_refuses_the_rest() -> None:
    call = events.EVENTS["client:tool_call"]
    assert call.may_send(Role.AGENT) and call.may_send("agent")
    assert not call.may_send(Role.COMPUTER) and not call.may_send("computer")
    assert not call.may_send(None) and not call.may_send("operator")
    assert call.request is call.request  # the model lookup is cached
    assert events.EVENTS["server:join_office"].may_send(None)  # senders None: any connection


@pytest.mark.parametrize(
    ("event", "ack"),
    [("server:join_office", "pair"), ("server:leave_office", "pair"), ("server:list_room", "object")],
)
def test_office_events_ack_kinds(event: str, ack: str) -> None:
    assert events.EVENTS[event].ack == ack


def test_parse_reply_raises_typed_error_for_error_payload() -> None:
    ack = {"code": 404, "message": "Computer with name 'x' not found", "details": {"computer_name": "x"}}
    with pytest.raises(errors.NotFoundError) as info:
        wire.parse_reply("client:get_tools", ack, models.GetToolsRet)
    assert str(info.value) == "[404] Computer with name 'x' not found"
    assert "computer_name" not in str(info.value)
    assert info.value.details == {"computer_name": "x"}


def test_parse_reply_malformed_success_is_a_malformed_reply_error() -> None:
    with pytest.raises(errors.MalformedReplyError, match="malformed reply to client:get_tools") as info:
        wire.parse_reply("client:get_tools", {"tools": "nope", "req_id": "r"}, models.GetToolsRet)
    assert info.value.details["field"] == "tools"
    assert isinstance(info.value, errors.LocalError)


def test_parse_reply_takes_the_reply_model_from_the_event_table() -> None:
    ret = wire.parse_reply("client:get_tools", {"tools": [], "req_id": "r"})
    assert isinstance(ret, models.GetToolsRet)
    with pytest.raises(ValueError, match="no reply model"):
        wire.parse_reply("client:tool_call", {})


def test_any_flat_code_and_message_is_an_error_payload() -> None:
    # a 503 from a shutting-down server is a refusal, not an empty success
    assert errors.is_error_payload({"code": 503, "message": "shutting down"})
    err = errors.error_from_payload({"code": 503, "message": "shutting down"})
    assert err.error_code == 503 and type(err) is errors.SMCPError
    assert not errors.is_error_payload({"code": "503", "message": "x"})
    assert not errors.is_error_payload({"content": [], "isError": False})


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ("client:get_skill", 4016),
        ("client:get_blob", 4018),
        ("client:put_blob", 4019),
        ("client:get_tools", 400),
        ("client:tool_call", 400),
    ],
)
def test_malformed_request_at_the_computer_gets_the_code_of_its_event(event: str, code: int) -> None:
    with pytest.raises(errors.SMCPError) as info:
        wire.parse_request(event, {"bogus": 1}, at_computer=True)
    assert info.value.error_code == code
    with pytest.raises(errors.BadRequestError):
        wire.parse_request(event, {"bogus": 1})


def test_every_exception_derives_from_one_root() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, errors.SMCPException), name
    assert issubclass(errors.LocalTimeoutError, TimeoutError)
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.VersionSkewError, ImportError)


def test_protocol_version_error_fields() -> None:
    body = {
        "code": 4008,
        "message": "Protocol version mismatch",
        "server_version": "0.4.0",
        "client_version": "0.3.9",
        "min_supported": "0.4.0",
        "max_supported": "0.4.999",
    }
    err = errors.error_from_payload(body)
    assert isinstance(err, errors.ProtocolVersionError)
    assert (err.server_version, err.client_version, err.min_supported, err.max_supported) == (
        "0.4.0",
        "0.3.9",
        "0.4.0",
        "0.4.999",
    )
    assert err.to_payload() == body


@pytest.mark.parametrize(
    ("payload", "ours", "official"),
    [
        ({"code": 404, "message": "m"}, True, True),
        ({"code": 400, "message": "m"}, True, False),
        ({"code": 4001, "message": "m"}, True, False),  # any flat code + message is an error
        ({"code": "404", "message": "m"}, False, False),
        ({"tools": []}, False, False),
        ([], False, False),
    ],
)
def test_error_payload_recognition(payload: object, ours: bool, official: bool) -> None:
    assert errors.is_error_payload(payload) is ours
    assert errors.is_official_error_payload(payload) is official


# --- model rules ---------------------------------------------------------------------------------


def test_pick_string_legacy_list_is_rejected_with_the_new_form() -> None:
    with pytest.raises(ValidationError, match="label"):
        models.PickStringInput(id="p", options=["a", "b"])  # type: ignore[list-item]


def test_pick_string_default_must_be_an_option_value() -> None:
    with pytest.raises(ValidationError, match="not the value of any option"):
        models.PickStringInput(id="p", options=[models.PickOption(label="A", value="a")], default="b")


@pytest.mark.parametrize(
    ("raw", "seconds", "out"),
    [
        ("PT30S", 30.0, "PT30S"),
        ("PT5M", 300.0, "PT5M"),
        (90, 90.0, "PT1M30S"),
        ("PT0.5S", 0.5, "PT0.5S"),
        ("P1DT1H", 90000.0, "PT25H"),
    ],
)
def test_streamable_timeouts_are_iso_durations(raw: Any, seconds: float, out: str) -> None:
    params = models.StreamableHttpServerParameters(url="http://x", timeout=raw)
    assert params.timeout == seconds
    assert wire.to_wire(params)["timeout"] == out


@pytest.mark.parametrize("bad", ["30", "PT", "P", "PTXS", "-PT1S"])
def test_bad_durations_are_rejected(bad: str) -> None:
    with pytest.raises(ValidationError, match="ISO-8601"):
        models.StreamableHttpServerParameters(url="http://x", timeout=bad)


def test_stdio_parameters_always_write_every_key() -> None:
    params = models.StdioServerParameters(command="python")
    assert wire.to_wire(params) == {
        "command": "python",
        "args": [],
        "env": None,
        "cwd": None,
        "encoding": "utf-8",
        "encoding_error_handler": "strict",
    }


def test_optional_fields_are_omitted_not_null() -> None:
    ret = models.GetResourcesRet(resources=[models.A2CResource(uri="mem://a", name="a")], req_id="r")
    assert wire.to_wire(ret) == {"resources": [{"uri": "mem://a", "name": "a"}], "req_id": "r"}


def test_resource_meta_uses_underscore_key() -> None:
    res = models.A2CResource.model_validate({"uri": "u", "name": "n", "_meta": {"k": 1}})
    assert wire.to_wire(res) == {"uri": "u", "name": "n", "_meta": {"k": 1}}


def test_tool_meta_encoding_keeps_order_and_extras() -> None:
    meta = models.ToolMeta.model_validate({"tags": ["t"], "custom": 1, "auto_apply": True})
    assert (
        meta.encode()
        == '{"auto_apply": true, "alias": null, "tags": ["t"], "ret_object_mapper": null, "custom": 1}'
    )


def test_smcp_tool_meta_rejects_nested_objects_and_nulls() -> None:
    with pytest.raises(ValidationError):
        models.SMCPTool(
            name="a__b",
            bundle_id="a",
            description="d",
            params_schema={},
            return_schema=None,
            meta={"x": None},
        )  # type: ignore[dict-item]
    with pytest.raises(ValidationError):
        models.SMCPTool(
            name="a__b",
            bundle_id="a",
            description="d",
            params_schema={},
            return_schema=None,
            meta={"x": {"nested": 1}},
        )  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ({"body": "x"}, True),
        ({"blob_handle": "h"}, True),
        ({}, False),
        ({"body": "x", "blob_handle": "h"}, False),
    ],
)
def test_get_skill_ret_body_xor_handle(data: dict[str, Any], ok: bool) -> None:
    base = {
        "name": "s",
        "rel_path": "SKILL.md",
        "mime_type": "text/markdown",
        "total_size": 1,
        "sha256": "0",
        "req_id": "r",
    }
    if ok:
        assert models.GetSkillRet.model_validate({**base, **data})
    else:
        with pytest.raises(ValidationError, match="exactly one"):
            models.GetSkillRet.model_validate({**base, **data})


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ({"office_id": "o", "computer": "c"}, True),
        ({"office_id": "o", "agent": "a"}, True),
        ({"office_id": "o"}, False),
        ({"office_id": "o", "agent": "a", "computer": "c"}, False),
    ],
)
def test_office_notification_has_exactly_one_member(data: dict[str, str], ok: bool) -> None:
    if ok:
        assert wire.to_wire(models.OfficeNotification.model_validate(data)) == data
    else:
        with pytest.raises(ValidationError):
            models.OfficeNotification.model_validate(data)
