from __future__ import annotations

from typing import Any

from pydantic import Field

from smcp.core.models._base import ComputerRequest, WireModel


class GetDesktopReq(ComputerRequest):
    """``client:get_desktop``: ``desktop_size`` caps the entries (``<= 0`` gives none)."""

    desktop_size: int | None = None
    window: str | None = Field(default=None, max_length=4096)


class GetDesktopRet(WireModel):
    desktops: list[str]
    req_id: str


class GetResourcesReq(ComputerRequest):
    """``client:get_resources``: one page of one MCP server's resources."""

    mcp_server: str
    cursor: str | None = None


class ResourceAnnotations(WireModel):
    audience: list[str] | None = None
    priority: float | None = None
    last_modified: str | None = None


class A2CResource(WireModel):
    """An MCP resource as it travels on the wire (snake_case keys)."""

    uri: str
    name: str
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None
    annotations: ResourceAnnotations | None = None
    meta: dict[str, Any] | None = Field(default=None, alias="_meta")


class GetResourcesRet(WireModel):
    resources: list[A2CResource]
    next_cursor: str | None = None
    req_id: str
