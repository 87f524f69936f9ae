"""The office's tools as MCP tools: names from the Agent's :class:`~smcp.agent.llm.Toolset` rule."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp_types as types

from smcp.agent.llm import Toolset

if TYPE_CHECKING:
    from smcp.agent._cache import ComputerCache
    from smcp.core.models import SMCPTool

logger = logging.getLogger("smcp.agent")

#: The ``meta`` key in which a Computer forwards its MCP server's tool annotations (JSON text).
ANNOTATION_KEY = "MCP_TOOL_ANNOTATION"


@dataclass(frozen=True, slots=True)
class Entry:
    """One MCP tool and the Computer tool behind it."""

    tool: types.Tool
    computer: str
    exposed: str


def _annotations(meta: dict[str, Any]) -> types.ToolAnnotations | None:
    raw = meta.get(ANNOTATION_KEY)
    if not isinstance(raw, str):
        return None
    try:
        return types.ToolAnnotations.model_validate(json.loads(raw))
    except ValueError:
        logger.info("ignoring unreadable tool annotations %r", raw[:80])
        return None


def _tool(name: str, computer: str, smcp: SMCPTool, schema: dict[str, Any]) -> types.Tool:
    meta = dict(smcp.meta or {})
    annotations = _annotations(meta)
    meta.pop(ANNOTATION_KEY, None)
    output = smcp.return_schema if isinstance(smcp.return_schema, dict) else None
    if output is not None and output.get("type") != "object":
        output = None  # MCP through 2025-11-25 wants an object at the root
    return types.Tool(
        name=name,
        title=annotations.title if annotations is not None and annotations.title else None,
        description=None if smcp.description in ("", "None") else smcp.description,
        input_schema=schema,
        output_schema=output,
        annotations=annotations,
        _meta={"smcp": {"computer": computer, "tool": smcp.name, "meta": meta}},
    )


class Catalogue:
    """A snapshot of the office's tools for MCP clients.

    Names follow :class:`~smcp.agent.llm.Toolset` with the Computer always prefixed:
    ``{computer}__{exposed}``, characters outside ``[A-Za-z0-9_-]`` replaced by ``_``, and a name
    longer than 64 characters (or taken twice) shortened with 8 hex digits of its sha256.
    """

    def __init__(self, pairs: Iterable[tuple[str, SMCPTool]]) -> None:
        pairs = list(pairs)
        toolset = Toolset(pairs, prefix_computer=True)
        by_key = {(computer, tool.name): tool for computer, tool in pairs}
        self.entries: dict[str, Entry] = {}
        for llm_tool in toolset.tools:
            smcp = by_key[(llm_tool.computer, llm_tool.tool)]
            tool = _tool(llm_tool.name, llm_tool.computer, smcp, llm_tool.parameters)
            self.entries[llm_tool.name] = Entry(tool, llm_tool.computer, llm_tool.tool)

    @classmethod
    def from_cache(cls, cache: ComputerCache, computers: Collection[str] | None) -> Catalogue:
        return cls((c, t) for c, t in cache.tools() if computers is None or c in computers)

    def tools(self) -> list[types.Tool]:
        return [entry.tool for entry in self.entries.values()]

    def signature(self) -> str:
        """Changes whenever what ``tools/list`` returns changes."""
        return json.dumps([e.tool.model_dump(mode="json", by_alias=True) for e in self.entries.values()])
