"""The office's resources as MCP resources: every Computer's MCP resources (``window://`` windows
among them) and its skills, under one URI scheme that names the Computer.

A resource ``R`` of Computer ``C`` is ``smcp://<C>/<R>``, both percent-encoded (``quote(.., safe="")``);
skill ``S`` is ``smcp://<C>/skill%3A%2F%2F<S>`` (its ``SKILL.md``). Windows are read through
``client:get_desktop``, skills through ``client:get_skill``; SMCP has no request that reads other
resources, so those are listed only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

import mcp_types as types
from mcp.shared.exceptions import MCPError

from smcp.core.errors import SMCPException

if TYPE_CHECKING:
    from smcp.agent._client import AsyncAgent
    from smcp.core.models import A2CResource

logger = logging.getLogger("smcp.agent")

SCHEME = "smcp"
SKILL_PREFIX = "skill://"
WINDOW_PREFIX = "window://"
RESOURCE_NOT_FOUND = -32002  # MCP's code for an unknown resource


def bridge_uri(computer: str, uri: str) -> str:
    return f"{SCHEME}://{quote(computer, safe='')}/{quote(uri, safe='')}"


def split_uri(uri: str) -> tuple[str, str]:
    """``(computer, original uri)`` of a bridge URI; raises :class:`MCPError` otherwise."""
    parts = urlsplit(uri)
    inner = parts.path[1:] if parts.path.startswith("/") else ""
    if parts.scheme != SCHEME or not parts.netloc or not inner:
        raise MCPError(RESOURCE_NOT_FOUND, f"not a resource of this bridge: {uri}")
    return unquote(parts.netloc), unquote(inner)


def _resource(computer: str, item: A2CResource) -> types.Resource:
    annotations = None
    if item.annotations is not None:
        annotations = types.Annotations.model_validate(
            {
                "audience": [a for a in item.annotations.audience or () if a in ("user", "assistant")]
                or None,
                "priority": item.annotations.priority,
                "lastModified": item.annotations.last_modified,
            }
        )
    return types.Resource.model_validate(
        {
            "uri": bridge_uri(computer, item.uri),
            "name": item.name,
            "title": f"{item.name} ({computer})",
            "description": item.description,
            "mimeType": item.mime_type,
            "size": item.size,
            "annotations": annotations,
            "_meta": {"smcp": {"computer": computer, "uri": item.uri, **(item.meta or {})}},
        }
    )


class ResourceIndex:
    """Lists and reads the resources of the office's Computers (or of the named ones)."""

    def __init__(self, agent: AsyncAgent, computers: Collection[str] | None) -> None:
        self.agent = agent
        self.computers = computers

    def _scope(self) -> list[str]:
        return [c for c in self.agent.cache.computers() if self.computers is None or c in self.computers]

    async def list_all(self) -> list[types.Resource]:
        per_computer = await asyncio.gather(*(self._of(c) for c in self._scope()))
        return [r for chunk in per_computer for r in chunk]

    async def _of(self, computer: str) -> list[types.Resource]:
        out: list[types.Resource] = []
        view = self.agent.cache.get(computer)
        config = view.config if view is not None else None
        try:
            if config is None:
                config = await self.agent.get_config(computer)
            for bundle in config.servers:
                try:
                    async for item in self.agent.iter_resources(computer, bundle):
                        out.append(_resource(computer, item))
                except SMCPException as exc:  # 4015: the server has no resources
                    logger.debug("no resources of %s on %s: %s", bundle, computer, exc)
            skills = view.skills if view is not None and view.skills is not None else []
        except SMCPException as exc:
            logger.warning("listing the resources of %s failed: %s", computer, exc)
            return out
        for skill in skills:
            out.append(
                types.Resource.model_validate(
                    {
                        "uri": bridge_uri(computer, SKILL_PREFIX + skill.name),
                        "name": skill.name,
                        "title": f"skill {skill.name} ({computer})",
                        "description": skill.description,
                        "mimeType": "text/markdown",
                        "_meta": {"smcp": {"computer": computer, "skill": skill.name}},
                    }
                )
            )
        return out

    async def read(self, uri: str) -> types.ReadResourceResult:
        computer, inner = split_uri(uri)
        if computer not in self.agent.cache or (
            self.computers is not None and computer not in self.computers
        ):
            raise MCPError(RESOURCE_NOT_FOUND, f"Computer {computer!r} is not in this office: {uri}")
        try:
            if inner.startswith(SKILL_PREFIX):
                skill = await self.agent.get_skill(computer, inner[len(SKILL_PREFIX) :])
                return types.ReadResourceResult(
                    contents=[types.TextResourceContents(uri=uri, mime_type="text/markdown", text=skill.text)]
                )
            if inner.startswith(WINDOW_PREFIX):
                entries = await self.agent.get_desktop(computer, window=inner)
                if not entries:
                    raise MCPError(RESOURCE_NOT_FOUND, f"no window {inner} on {computer}")
                body = entries[0][len(inner) :].lstrip("\n")
                return types.ReadResourceResult(
                    contents=[types.TextResourceContents(uri=uri, mime_type="text/plain", text=body)]
                )
        except SMCPException as exc:
            raise MCPError(RESOURCE_NOT_FOUND, f"{computer}: {exc}") from None
        raise MCPError(
            RESOURCE_NOT_FOUND,
            f"{inner} on {computer} is listed only: SMCP reads windows (window://) and skills, "
            "not other resources",
        )
