"""Confirmation through MCP elicitation, for tools their Computer does not auto-apply."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from smcp.core.results import META_TOOL_META

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

    from smcp.agent.mcp._private.catalogue import Entry

logger = logging.getLogger("smcp.agent")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"confirm": {"type": "boolean", "title": "Run this tool", "default": True}},
    "required": ["confirm"],
}


def needs_confirmation(entry: Entry) -> bool:
    """True unless the Computer reports ``auto_apply: true`` in the tool's ``a2c_tool_meta``."""
    meta = (entry.tool.meta or {}).get("smcp", {}).get("meta", {})
    raw = meta.get(META_TOOL_META)
    try:
        declared = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        declared = None
    return not (isinstance(declared, dict) and declared.get("auto_apply") is True)


def can_elicit(ctx: ServerRequestContext[Any, Any]) -> bool:
    capabilities = ctx.session.client_capabilities
    return capabilities is not None and capabilities.elicitation is not None and ctx.session.can_send_request


async def ask(ctx: ServerRequestContext[Any, Any], entry: Entry, arguments: dict[str, Any]) -> str | None:
    """Ask the MCP client's user; ``None`` when approved, else why not."""
    shown = json.dumps(arguments, ensure_ascii=False)
    if len(shown) > 500:
        shown = shown[:500] + "…"
    message = f"Run tool {entry.exposed!r} on Computer {entry.computer!r} with {shown}?"
    related = str(ctx.request_id) if ctx.request_id is not None else None
    try:
        answer = await ctx.session.elicit_form(message, SCHEMA, related_request_id=related)
    except Exception as exc:
        logger.info("elicitation for %s failed: %s", entry.exposed, exc)
        return f"confirmation failed: {exc}"
    if answer.action == "accept" and (answer.content or {}).get("confirm", True) is not False:
        return None
    return f"the user did not confirm the call ({answer.action})"
