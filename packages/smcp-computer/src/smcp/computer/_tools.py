"""The exposed-tool registry: config ToolMeta merge, exposed names, ``SMCPTool`` wire forms.

Built from the running servers and cached until one of them reports a change
(docs/protocol.md §9.1-§9.3).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from smcp.core.events import ServerEvent
from smcp.core.results import META_TOOL_META

if TYPE_CHECKING:
    from collections.abc import Iterable

    import mcp_types

    from smcp.computer._hosting import MCPServerHost
    from smcp.core.models import MCPServerConfig, SMCPTool, ToolMeta

__all__ = ["Change", "ExposedTool", "ToolRegistry", "build_tools", "merge_tool_meta"]

logger = logging.getLogger("smcp.computer")


class Change(StrEnum):
    """What changed on this Computer; each maps onto the ``server:update_*`` event that says so."""

    TOOLS = "tools"
    DESKTOP = "desktop"
    SKILLS = "skills"
    CONFIG = "config"

    @property
    def event(self) -> ServerEvent:
        return _EVENTS[self]


_EVENTS = {
    Change.TOOLS: ServerEvent.UPDATE_TOOL_LIST,
    Change.DESKTOP: ServerEvent.UPDATE_DESKTOP,
    Change.SKILLS: ServerEvent.UPDATE_SKILLS,
    Change.CONFIG: ServerEvent.UPDATE_CONFIG,
}


@dataclass(frozen=True)
class ExposedTool:
    """One routed tool: exposed name, owning server, original name and its merged metadata.

    ``tool`` is its ``SMCPTool`` and ``wire`` the same as ``client:get_tools`` sends it (both
    built once per registry).
    """

    name: str
    host: MCPServerHost
    original: str
    config_meta: ToolMeta | None
    wire: dict[str, Any]
    tool: SMCPTool


def merge_tool_meta(config: MCPServerConfig, tool: str) -> ToolMeta | None:
    """The config-only ToolMeta merge (docs/protocol.md §9.2): ``tool_meta[tool]`` over
    ``default_tool_meta``. ``alias`` comes only from ``tool_meta[tool]``."""
    from smcp.core.models import ToolMeta

    specific = config.tool_meta.get(tool)
    default = config.default_tool_meta
    if default is None:
        return specific
    base = {k: v for k, v in default.model_dump(mode="python").items() if v is not None}
    base["alias"] = None
    if specific is not None:
        for key, value in specific.model_dump(mode="python").items():
            if value is not None:
                base[key] = value
        base["alias"] = specific.alias
    return ToolMeta.model_validate(base)


def _declared(tool: mcp_types.Tool, bundle_id: str) -> tuple[bool, bool, list[str] | None]:
    """(declared, valid, tags) of the server's ``_meta.a2c_tool_meta`` declaration."""
    meta = tool.meta or {}
    if META_TOOL_META not in meta:
        return False, False, None
    decl = meta[META_TOOL_META]
    if isinstance(decl, dict):
        tags = decl.get("tags")
        if tags is None or (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            return True, True, tags
    logger.warning("MCP server %s: malformed %s on tool %r ignored", bundle_id, META_TOOL_META, tool.name)
    return True, False, None


def _is_attr(value: Any) -> bool:
    if isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list) and value:
        kinds = {type(v) for v in value}
        return len(kinds) == 1 and kinds.pop() in (str, bool, int, float)
    return isinstance(value, list)


def build_tools(host: MCPServerHost) -> list[ExposedTool]:
    """The exposed tools of one running server (docs/protocol.md §9.1-§9.3)."""
    from smcp.core.models import SMCPTool, ToolMeta
    from smcp.core.naming import exposed_tool_name
    from smcp.core.wire import to_wire

    config = host.config
    if config.default_tool_meta is not None and config.default_tool_meta.alias:
        logger.warning("MCP server %s: 'alias' in default_tool_meta is ignored", host.bundle_id)
    forbidden = set(config.forbidden_tools)
    out: list[ExposedTool] = []
    seen: set[str] = set()
    for tool in host.tools or ():
        cfg_meta = merge_tool_meta(config, tool.name)
        alias = cfg_meta.alias if cfg_meta is not None else None
        if tool.name in forbidden or (alias and alias in forbidden):
            continue
        name = exposed_tool_name(host.bundle_id, tool.name, alias)
        if name in seen:
            logger.warning("MCP server %s: exposed name %r used twice; first kept", host.bundle_id, name)
            continue
        seen.add(name)
        _, valid, tags = _declared(tool, host.bundle_id)
        shown = cfg_meta
        if valid:
            if shown is None:
                shown = ToolMeta(tags=tags)
            elif shown.tags is None and tags is not None:
                shown = shown.model_copy(update={"tags": tags})
        meta: dict[str, Any] = {}
        for key, value in (tool.meta or {}).items():
            if key == META_TOOL_META:
                continue
            meta[key] = value if _is_attr(value) else json.dumps(value, default=str)
        if tool.annotations is not None:
            meta["MCP_TOOL_ANNOTATION"] = json.dumps(tool.annotations.model_dump(mode="json", by_alias=True))
        if shown is not None:
            meta[META_TOOL_META] = shown.encode()
        smcp_tool = SMCPTool(
            name=name,
            bundle_id=host.bundle_id,
            description=tool.description or "None",
            params_schema=dict(tool.input_schema),
            return_schema=dict(tool.output_schema) if tool.output_schema is not None else None,
            meta=meta,
        )
        out.append(ExposedTool(name, host, tool.name, cfg_meta, to_wire(smcp_tool), smcp_tool))
    return out


class ToolRegistry:
    """Exposed name → :class:`ExposedTool` over the running servers, cached until :meth:`invalidate`.

    When two servers expose the same name, the later one (in activation order) owns it.
    """

    def __init__(self) -> None:
        self._cache: dict[str, ExposedTool] | None = None
        self._announced: tuple[tuple[str, str], ...] | None = None

    def invalidate(self) -> None:
        self._cache = None

    def entries(self, hosts: Iterable[MCPServerHost]) -> dict[str, ExposedTool]:
        """The registry (built from ``hosts`` when the cache is empty)."""
        cache = self._cache
        if cache is None:
            cache = {}
            for host in hosts:
                for tool in build_tools(host):
                    cache[tool.name] = tool
            self._cache = cache
        return cache

    def changed(self, hosts: Iterable[MCPServerHost]) -> bool:
        """Rebuild; True when the exposed tools differ from the last time this returned True."""
        self._cache = None
        signature = tuple(
            (name, json.dumps(t.wire, sort_keys=True)) for name, t in self.entries(hosts).items()
        )
        if signature == self._announced:
            return False
        self._announced = signature
        return True
