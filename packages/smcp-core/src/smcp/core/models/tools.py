from __future__ import annotations

import json
from typing import Any

from pydantic import ConfigDict, Field

from smcp.core.models._base import ComputerRequest, WireModel

_TOOL_META_ORDER = ("auto_apply", "alias", "tags", "ret_object_mapper")


class ToolMeta(WireModel):
    """Per-tool settings; extra keys are kept and passed through."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    __keep_none__ = frozenset({"auto_apply", "alias", "tags", "ret_object_mapper"})

    auto_apply: bool | None = None
    alias: str | None = None
    tags: list[str] | None = None
    ret_object_mapper: dict[str, Any] | None = None

    def encode(self) -> str:
        """The JSON string written to ``SMCPTool.meta["a2c_tool_meta"]``, in the official key order."""
        data = self.model_dump(mode="json")
        ordered = {key: data.pop(key, None) for key in _TOOL_META_ORDER}
        ordered.update(data)
        return json.dumps(ordered)


class ToolCallReq(ComputerRequest):
    """``client:tool_call``. ``timeout`` is whole seconds (``2``, ``2.0`` and ``"2"`` accepted)."""

    tool_name: str = Field(max_length=1024)
    params: dict[str, Any]
    timeout: int = Field(ge=0)


class GetToolsReq(ComputerRequest):
    """``client:get_tools``."""


MetaValue = str | bool | int | float | list[str] | list[bool] | list[int] | list[float]


class SMCPTool(WireModel):
    """One exposed tool as ``client:get_tools`` lists it."""

    __keep_none__ = frozenset({"return_schema"})

    name: str
    bundle_id: str
    description: str
    params_schema: dict[str, Any]
    return_schema: dict[str, Any] | None
    meta: dict[str, MetaValue] | None = None


class GetToolsRet(WireModel):
    tools: list[SMCPTool]
    req_id: str
