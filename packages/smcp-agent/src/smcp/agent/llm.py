"""Turn the Agent's tool cache into the tool list an LLM API expects, and route its calls back.

    toolset = Toolset.from_cache(agent.cache)
    response = llm.create(messages=..., tools=toolset.openai())
    for call in response.tool_calls:
        result = await toolset.call(agent, call.name, call.arguments)

LLM providers restrict function names (OpenAI: ``^[A-Za-z0-9_-]{1,64}$``), so every tool gets a
short name that is unique across all Computers; :meth:`Toolset.resolve` maps it back to the
Computer and the exposed tool name. The names on the SMCP wire never change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_types import CallToolResult

    from smcp.agent._cache import ComputerCache
    from smcp.agent._client import AsyncAgent
    from smcp.core.models import SMCPTool

__all__ = ["LLMTool", "Toolset", "result_text"]

_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_-]")
MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class LLMTool:
    """One tool as the model sees it, and where it really lives."""

    name: str
    description: str
    parameters: dict[str, Any]
    computer: str
    tool: str


def _short_name(raw: str, taken: set[str]) -> str:
    name = _NOT_NAME_CHAR.sub("_", raw) or "tool"
    if len(name) > MAX_NAME or name in taken:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}_{digest}"
    return name


class Toolset:
    """A fixed snapshot of tools for one LLM turn (build a new one when the cache changes)."""

    def __init__(
        self, entries: Iterable[tuple[str, SMCPTool]], *, prefix_computer: bool | None = None
    ) -> None:
        pairs = list(entries)
        if prefix_computer is None:
            prefix_computer = len({computer for computer, _ in pairs}) > 1
        self.tools: list[LLMTool] = []
        self._by_name: dict[str, LLMTool] = {}
        taken: set[str] = set()
        for computer, tool in pairs:
            raw = f"{computer}__{tool.name}" if prefix_computer else tool.name
            name = _short_name(raw, taken)
            taken.add(name)
            description = "" if tool.description == "None" else tool.description
            schema = dict(tool.params_schema) if tool.params_schema else {}
            schema.setdefault("type", "object")
            schema.setdefault("properties", {})
            entry = LLMTool(name, description, schema, computer, tool.name)
            self.tools.append(entry)
            self._by_name[name] = entry

    @classmethod
    def from_cache(cls, cache: ComputerCache, computers: Iterable[str] | None = None) -> Toolset:
        """Every cached tool (of the given Computers, or of all of them)."""
        wanted = set(computers) if computers is not None else None
        return cls((c, t) for c, t in cache.tools() if wanted is None or c in wanted)

    def __len__(self) -> int:
        return len(self.tools)

    def resolve(self, name: str) -> LLMTool:
        """The tool behind an LLM-facing name; ``KeyError`` names the known ones."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown tool {name!r}; known: {sorted(self._by_name)}") from None

    def openai(self) -> list[dict[str, Any]]:
        """``tools=`` for OpenAI-style chat completions (function tools)."""
        return [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for t in self.tools
        ]

    def anthropic(self) -> list[dict[str, Any]]:
        """``tools=`` for Anthropic-style messages."""
        return [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in self.tools
        ]

    def plain(self) -> list[dict[str, Any]]:
        """``{"name", "description", "parameters"}`` per tool (most frameworks accept this)."""
        return [
            {"name": t.name, "description": t.description, "parameters": t.parameters} for t in self.tools
        ]

    async def call(
        self,
        agent: AsyncAgent,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        timeout: float = 60,  # noqa: ASYNC109
    ) -> CallToolResult:
        """Run the tool the model asked for; ``arguments`` may be the model's JSON text."""
        tool = self.resolve(name)
        if isinstance(arguments, str):
            arguments = json.loads(arguments) if arguments.strip() else {}
        return await agent.call_tool(tool.computer, tool.tool, arguments or {}, timeout)


def result_text(result: CallToolResult) -> str:
    """A tool result as text for the model: text items joined, other items summarised."""
    parts: list[str] = []
    for item in result.content:
        text = getattr(item, "text", None)
        if isinstance(text, str):
            parts.append(text)
        else:
            parts.append(f"[{getattr(item, 'type', 'content')} content]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)
