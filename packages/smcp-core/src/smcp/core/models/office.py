from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from smcp.core.models._base import AgentCallData, Ident, Name, WireModel


class EnterOfficeReq(WireModel):
    """``server:join_office``."""

    role: Literal["computer", "agent"]
    name: Name
    office_id: Name


class LeaveOfficeReq(WireModel):
    """``server:leave_office``."""

    office_id: Name


class OfficeNotification(WireModel):
    """``notify:enter_office`` / ``notify:leave_office``: exactly one of computer/agent."""

    office_id: str
    computer: str | None = None
    agent: str | None = None

    @model_validator(mode="after")
    def _one_member(self) -> OfficeNotification:
        if (self.computer is None) == (self.agent is None):
            raise ValueError("exactly one of 'computer' or 'agent' must be present")
        return self


class UpdateComputerConfigReq(WireModel):
    """Request of every ``server:update_*`` event."""

    computer: Name


class UpdateNotification(WireModel):
    """Payload of ``notify:update_config|tool_list|desktop|skills``."""

    computer: str


class ToolCallCancelReq(AgentCallData):
    """``server:tool_call_cancel``: ``req_id`` is the original tool call's id."""


class CancelNotification(WireModel):
    """``notify:tool_call_cancel``."""

    agent: str
    req_id: Ident


class ListRoomReq(AgentCallData):
    """``server:list_room``."""

    office_id: Name


class SessionInfo(WireModel):
    sid: str
    name: str
    role: Literal["computer", "agent"]
    office_id: str
    a2c_version: str | None = None


class ListRoomRet(WireModel):
    sessions: list[SessionInfo]
    req_id: str
