"""Checks of a ``client:*`` request against its sender before it is relayed.

Two layers: the token's own scope (the ``smcp_tools`` allow-list of ``client:tool_call``), then an
operator's :data:`Policy` hook. A refusal is a :class:`PolicyRefused` (403) that never reaches the
Computer. Example, a read-only agent::

    def read_only(principal, office, event, request):
        if principal.claims.get("readonly") and event == "client:tool_call":
            if not request["tool_name"].startswith("get_"):
                return f"read-only agents may only call get_* tools, not {request['tool_name']!r}"
        return True

    SMCPServer(settings, auth, policy=read_only)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from smcp.core.errors import ForbiddenError
from smcp.core.events import ClientEvent

if TYPE_CHECKING:
    from smcp.server.core._auth import Principal

__all__ = ["Policy", "PolicyRefused", "check_request"]

log = logging.getLogger("smcp.server")

#: ``(principal, office, event, request) -> verdict``, sync or async. ``True`` or ``None`` allow;
#: ``False`` or a string (the reason the caller is told) refuse. ``request`` is the request dict as
#: received; the hook must not change it. A hook that raises refuses (and is logged).
Policy = Callable[["Principal", str, str, dict[str, Any]], "bool | str | Awaitable[bool | str | None] | None"]

_TOOL_CALL = ClientEvent.TOOL_CALL.value


class PolicyRefused(ForbiddenError):
    """A request refused by the token's scope or the policy hook (403, outcome ``policy``)."""


def tool_allowed(patterns: tuple[str, ...], tool: str) -> bool:
    """Whether ``tool`` matches one of the ``fnmatch`` ``patterns`` (case-sensitive)."""
    return any(fnmatchcase(tool, pattern) for pattern in patterns)


async def check_request(
    principal: Principal | None, office: str, event: str, request: Any, policy: Policy | None
) -> None:
    """Raise :class:`PolicyRefused` when ``principal`` may not send ``request`` in ``office``."""
    if principal is None:
        return
    tools = principal.tools
    if tools is not None and event == _TOOL_CALL and isinstance(request, dict):
        tool = request.get("tool_name")
        if isinstance(tool, str) and not tool_allowed(tools, tool):
            raise PolicyRefused(
                f"{event}: tool '{tool}' is not allowed for '{principal.id}' "
                f"(token claim smcp_tools allows {list(tools)})",
                details={"event": event, "tool_name": tool, "reason": "smcp_tools"},
            )
    if policy is None:
        return
    try:
        verdict = policy(principal, office, event, request)
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except Exception:
        log.exception("policy hook raised; request refused", extra={"event": event})
        verdict = "the server's policy check failed"
    if verdict is None or verdict is True:
        return
    reason = verdict if isinstance(verdict, str) and verdict else "refused by the server's policy"
    details: dict[str, Any] = {"event": event, "reason": "policy"}
    if event == _TOOL_CALL and isinstance(request, dict) and isinstance(request.get("tool_name"), str):
        details["tool_name"] = request["tool_name"]
        reason = f"{event}: tool '{request['tool_name']}': {reason}"
    else:
        reason = f"{event}: {reason}"
    raise PolicyRefused(reason, details=details)
