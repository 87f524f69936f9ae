"""Every SMCP event and the one table that says how each is handled.

Server, Agent and Computer all read :data:`EVENTS` instead of repeating rules: which model
validates the request, which model the reply has, which role may send it, how it is
acknowledged, which deadline applies, which notification it triggers and which error a
Computer answers a malformed request with.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from smcp.core.errors import ErrorCode, SMCPError, error_class
from smcp.core.roles import Role

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "EVENTS",
    "NAMESPACE",
    "AckKind",
    "ClientEvent",
    "EventSpec",
    "NotifyEvent",
    "ServerEvent",
    "TimeoutClass",
    "event_spec",
]

#: The Socket.IO namespace every SMCP event travels on.
NAMESPACE = "/smcp"


class ClientEvent(StrEnum):
    """Agent → Server → one Computer; always acknowledged with one object."""

    TOOL_CALL = "client:tool_call"
    GET_TOOLS = "client:get_tools"
    GET_CONFIG = "client:get_config"
    GET_DESKTOP = "client:get_desktop"
    GET_RESOURCES = "client:get_resources"
    GET_SKILLS = "client:get_skills"
    GET_SKILL = "client:get_skill"
    GET_BLOB = "client:get_blob"
    PUT_BLOB = "client:put_blob"


class ServerEvent(StrEnum):
    """Client → Server."""

    JOIN_OFFICE = "server:join_office"
    LEAVE_OFFICE = "server:leave_office"
    LIST_ROOM = "server:list_room"
    UPDATE_CONFIG = "server:update_config"
    UPDATE_TOOL_LIST = "server:update_tool_list"
    UPDATE_DESKTOP = "server:update_desktop"
    UPDATE_SKILLS = "server:update_skills"
    TOOL_CALL_CANCEL = "server:tool_call_cancel"


class NotifyEvent(StrEnum):
    """Server → office members; never acknowledged."""

    ENTER_OFFICE = "notify:enter_office"
    LEAVE_OFFICE = "notify:leave_office"
    UPDATE_CONFIG = "notify:update_config"
    UPDATE_TOOL_LIST = "notify:update_tool_list"
    UPDATE_DESKTOP = "notify:update_desktop"
    UPDATE_SKILLS = "notify:update_skills"
    TOOL_CALL_CANCEL = "notify:tool_call_cancel"


#: ``object``: one ack argument (reply model or ErrorPayload); ``pair``: ``[ok, error]``;
#: ``none``: no reply (an empty ack if the sender asked for one).
AckKind = Literal["object", "pair", "none"]
#: Which relay deadline applies: a tool call's own timeout plus grace, or the default one.
TimeoutClass = Literal["tool_call", "default"]


@functools.cache
def _model(name: str | None) -> type[BaseModel] | None:
    # Models are imported on first use: importing the table must not build pydantic classes.
    if name is None:
        return None
    model: type[BaseModel] = getattr(importlib.import_module("smcp.core.models"), name)
    return model


@dataclass(frozen=True, slots=True)
class EventSpec:
    """How one event is handled. ``request_model``/``reply_model`` name classes in
    :mod:`smcp.core.models`; :attr:`request` and :attr:`reply` resolve them."""

    name: str
    request_model: str | None
    reply_model: str | None
    #: Roles allowed to send it; ``None`` means any authenticated connection.
    senders: frozenset[Role] | None
    ack: AckKind
    #: The ``notify:*`` event it fans out to the sender's office, if any.
    notifies: NotifyEvent | None = None
    timeout: TimeoutClass | None = None
    #: Protocol version that introduced it.
    since: str = "0.1.0"
    #: The code a Computer answers a malformed request with (official peers know only their own
    #: codes, so skills and blobs have theirs; everything else is a 400).
    malformed: ErrorCode = ErrorCode.BAD_REQUEST

    @property
    def request(self) -> type[BaseModel] | None:
        return _model(self.request_model)

    @property
    def reply(self) -> type[BaseModel] | None:
        return _model(self.reply_model)

    @property
    def malformed_error(self) -> type[SMCPError]:
        """The exception class of :attr:`malformed`."""
        return error_class(self.malformed)

    @property
    def is_client_request(self) -> bool:
        return self.name.startswith("client:")

    def may_send(self, role: Role | str | None) -> bool:
        """Whether a connection in ``role`` (``None``: not in an office yet) may send this event."""
        if self.senders is None:
            return True
        return role in self.senders  # a Role is a StrEnum: its plain value matches it too


_AGENT = frozenset({Role.AGENT})
_COMPUTER = frozenset({Role.COMPUTER})


def _client(
    event: ClientEvent,
    req: str,
    ret: str,
    since: str = "0.1.0",
    malformed: ErrorCode = ErrorCode.BAD_REQUEST,
) -> EventSpec:
    return EventSpec(
        event.value, req, ret, _AGENT, "object", timeout="default", since=since, malformed=malformed
    )


def _update(event: ServerEvent, notify: NotifyEvent, since: str = "0.1.0") -> EventSpec:
    return EventSpec(event.value, "UpdateComputerConfigReq", None, _COMPUTER, "none", notify, since=since)


_TABLE: tuple[EventSpec, ...] = (
    # tool_call replies are MCP CallToolResult objects, forwarded verbatim: no reply model.
    EventSpec(ClientEvent.TOOL_CALL.value, "ToolCallReq", None, _AGENT, "object", timeout="tool_call"),
    _client(ClientEvent.GET_TOOLS, "GetToolsReq", "GetToolsRet"),
    _client(ClientEvent.GET_CONFIG, "GetComputerConfigReq", "GetComputerConfigRet"),
    _client(ClientEvent.GET_DESKTOP, "GetDesktopReq", "GetDesktopRet"),
    _client(ClientEvent.GET_RESOURCES, "GetResourcesReq", "GetResourcesRet", "0.2.0"),
    _client(ClientEvent.GET_SKILLS, "GetSkillsReq", "GetSkillsRet", "0.2.1"),
    _client(ClientEvent.GET_SKILL, "GetSkillReq", "GetSkillRet", "0.2.1", ErrorCode.SKILL_NAME_INVALID),
    _client(ClientEvent.GET_BLOB, "GetBlobReq", "GetBlobRet", "0.2.1", ErrorCode.BLOB_NOT_ACCESSIBLE),
    _client(ClientEvent.PUT_BLOB, "PutBlobReq", "PutBlobRet", "0.4.0", ErrorCode.BLOB_WRITE_FAILED),
    EventSpec(ServerEvent.JOIN_OFFICE.value, "EnterOfficeReq", None, None, "pair", NotifyEvent.ENTER_OFFICE),
    EventSpec(ServerEvent.LEAVE_OFFICE.value, "LeaveOfficeReq", None, None, "pair", NotifyEvent.LEAVE_OFFICE),
    EventSpec(ServerEvent.LIST_ROOM.value, "ListRoomReq", "ListRoomRet", None, "object"),
    _update(ServerEvent.UPDATE_CONFIG, NotifyEvent.UPDATE_CONFIG),
    _update(ServerEvent.UPDATE_TOOL_LIST, NotifyEvent.UPDATE_TOOL_LIST),
    _update(ServerEvent.UPDATE_DESKTOP, NotifyEvent.UPDATE_DESKTOP, "0.2.0"),
    _update(ServerEvent.UPDATE_SKILLS, NotifyEvent.UPDATE_SKILLS, "0.2.1"),
    EventSpec(
        ServerEvent.TOOL_CALL_CANCEL.value,
        "ToolCallCancelReq",
        None,
        _AGENT,
        "none",
        NotifyEvent.TOOL_CALL_CANCEL,
    ),
    EventSpec(NotifyEvent.ENTER_OFFICE.value, "OfficeNotification", None, frozenset(), "none"),
    EventSpec(NotifyEvent.LEAVE_OFFICE.value, "OfficeNotification", None, frozenset(), "none"),
    EventSpec(NotifyEvent.UPDATE_CONFIG.value, "UpdateNotification", None, frozenset(), "none"),
    EventSpec(NotifyEvent.UPDATE_TOOL_LIST.value, "UpdateNotification", None, frozenset(), "none"),
    EventSpec(NotifyEvent.UPDATE_DESKTOP.value, "UpdateNotification", None, frozenset(), "none"),
    EventSpec(NotifyEvent.UPDATE_SKILLS.value, "UpdateNotification", None, frozenset(), "none"),
    EventSpec(NotifyEvent.TOOL_CALL_CANCEL.value, "CancelNotification", None, frozenset(), "none"),
)

#: Event name → its spec. Read-only.
EVENTS: MappingProxyType[str, EventSpec] = MappingProxyType({spec.name: spec for spec in _TABLE})


def event_spec(name: str) -> EventSpec | None:
    """The spec of ``name``, or ``None`` for an event SMCP does not define."""
    return EVENTS.get(name)
