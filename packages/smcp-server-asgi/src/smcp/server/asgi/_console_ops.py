"""What the operator console asks of the server: Computers' tool lists, a tool call by hand, a disconnect.

An admin's call goes through ``SMCPServer.request_as``, so it is a normal ``client:tool_call``:
parsed, relayed, counted and handed to every call listener (the audit trail) with the admin
principal as its sender.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from smcp.core.events import NAMESPACE, ClientEvent
from smcp.core.roles import Role
from smcp.server.core import Principal, Session

if TYPE_CHECKING:
    from smcp.server.core import SMCPServer
    from smcp.server.core._calls import FinishedCall

__all__ = ["ADMIN_NAME", "ADMIN_PRINCIPAL", "ToolCache", "admin_session", "call_tool", "disconnect"]

log = logging.getLogger("smcp.server")

#: The sender name and principal of calls made from the console.
ADMIN_NAME = "console-admin"
ADMIN_PRINCIPAL = Principal("console-admin", {"console": True})

_OBSERVED = frozenset({ClientEvent.GET_TOOLS.value, ClientEvent.GET_CONFIG.value})

#: Seconds a Computer's tool list is kept before the console asks again.
TOOLS_TTL = 60.0
TOOLS_TIMEOUT = 5.0


def summarize_tools(reply: Any) -> list[dict[str, Any]] | None:
    """The tool list of a ``client:get_tools`` answer (name, description, tags, auto_apply)."""
    if not isinstance(reply, dict) or not isinstance(reply.get("tools"), list):
        return None
    out: list[dict[str, Any]] = []
    for tool in reply["tools"]:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            continue
        meta = tool.get("meta") if isinstance(tool.get("meta"), dict) else {}
        tool_meta: Any = meta.get("a2c_tool_meta") if meta else None
        if isinstance(tool_meta, str):
            try:
                tool_meta = json.loads(tool_meta)
            except ValueError:
                tool_meta = None
        if not isinstance(tool_meta, dict):
            tool_meta = {}
        tags = tool_meta.get("tags")
        description = tool.get("description")
        out.append(
            {
                "name": tool["name"],
                "description": description[:500] if isinstance(description, str) else "",
                "tags": [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
                "auto_apply": tool_meta.get("auto_apply") is True,
                "params_schema": tool.get("params_schema")
                if isinstance(tool.get("params_schema"), dict)
                else {},
            }
        )
    return out


def forbidden_tools(reply: Any) -> list[str] | None:
    """``server/tool`` for every ``forbidden_tools`` entry of a ``client:get_config`` answer."""
    servers = reply.get("servers") if isinstance(reply, dict) else None
    if not isinstance(servers, dict):
        return None
    out: list[str] = []
    for server, config in servers.items():
        names = config.get("forbidden_tools") if isinstance(config, dict) else None
        if isinstance(names, list):
            out.extend(f"{server}/{name}" for name in names if isinstance(name, str))
    return out


class ToolCache:
    """Each Computer's tools by session id: from Agents' ``client:get_tools`` answers, or asked for."""

    def __init__(self, server: SMCPServer) -> None:
        self._server = server
        self._tools: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._forbidden: dict[str, list[str]] = {}
        self._fetching: dict[str, asyncio.Task[None]] = {}

    def observe(self, call: FinishedCall) -> None:
        """A call listener: keep the tool list (or forbidden tools) an Agent just received."""
        event = call.event
        if event not in _OBSERVED or call.outcome != "ok" or call.office is None or call.computer is None:
            return
        lookup = getattr(self._server.registry, "lookup_nowait", None)
        target = lookup(call.office, call.computer) if lookup is not None else None
        if not isinstance(target, Session):
            return
        if event == ClientEvent.GET_TOOLS.value:
            tools = summarize_tools(call.reply)
            if tools is not None:
                self._tools[target.sid] = (time.monotonic(), tools)
        else:
            forbidden = forbidden_tools(call.reply)
            if forbidden is not None:
                self._forbidden[target.sid] = forbidden

    def forget(self, sid: str) -> None:
        self._tools.pop(sid, None)
        self._forbidden.pop(sid, None)

    def cached(self, sid: str) -> list[dict[str, Any]] | None:
        entry = self._tools.get(sid)
        return None if entry is None else entry[1]

    def forbidden(self, sid: str) -> list[str] | None:
        """The Computer's forbidden tools (``server/tool``), from its configuration; ``None``: unknown."""
        return self._forbidden.get(sid)

    def refresh_soon(self, computer: Session) -> None:
        """Ask ``computer`` for its tools in the background when none are cached or they are old."""
        entry = self._tools.get(computer.sid)
        if computer.sid in self._fetching or (entry and time.monotonic() - entry[0] < TOOLS_TTL):
            return
        self._start(computer)

    async def fetch(self, computer: Session) -> None:
        """Ask ``computer`` for its tools now (or wait for the question already asked)."""
        task = self._fetching.get(computer.sid) or self._start(computer)
        await asyncio.shield(task)

    def _start(self, computer: Session) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._ask(computer))
        self._fetching[computer.sid] = task
        task.add_done_callback(lambda _: self._fetching.pop(computer.sid, None))
        return task

    async def _ask(self, computer: Session) -> None:
        """``client:get_tools`` and ``client:get_config`` straight to the Computer (not calls: no
        listener sees them)."""
        server = self._server

        async def ask(event: str) -> Any:
            data = {"computer": computer.name, "agent": ADMIN_NAME, "req_id": uuid.uuid4().hex}
            return await server.ask_computer(computer, event, data, TOOLS_TIMEOUT)

        try:
            listed, config = await asyncio.gather(
                ask(ClientEvent.GET_TOOLS.value), ask(ClientEvent.GET_CONFIG.value)
            )
            tools = summarize_tools(listed)
            if tools is not None:
                self._tools[computer.sid] = (time.monotonic(), tools)
            else:
                log.debug("console: no tool list from computer %r", computer.name)
            forbidden = forbidden_tools(config)
            if forbidden is not None:
                self._forbidden[computer.sid] = forbidden
        except Exception:
            log.exception("console: asking computer %r for its tools failed", computer.name)


def admin_session(office: str) -> Session:
    """A session of the admin principal in ``office``, with a sid of its own (no connection)."""
    return Session(f"console:{uuid.uuid4().hex}", None, ADMIN_PRINCIPAL, Role.AGENT, ADMIN_NAME, office)


async def call_tool(
    server: SMCPServer,
    session: Session,
    computer: str,
    tool: str,
    params: dict[str, Any],
    *,
    seconds: int,
) -> Any:
    """Call ``tool`` on ``computer`` as ``session`` (see :func:`admin_session`); returns the answer.

    ``seconds`` is the call's ``timeout`` field. The request takes the path of an Agent's
    ``client:tool_call`` (``SMCPServer.request_as``), from a sender that is not a member of the
    office (no join, no notification).
    """
    data = {
        "agent": ADMIN_NAME,
        "req_id": uuid.uuid4().hex,
        "computer": computer,
        "tool_name": tool,
        "params": params,
        "timeout": seconds,
    }
    log.info(
        "console: admin calls tool %r on computer %r in office %r",
        tool,
        computer,
        session.office,
        extra={"office": session.office, "computer": computer, "tool": tool, "req_id": data["req_id"]},
    )
    return await server.request_as(session, ClientEvent.TOOL_CALL.value, data)


async def disconnect(server: SMCPServer, sid: str) -> bool:
    """Disconnect session ``sid`` (a Socket.IO disconnect: the client is told it was disconnected)."""
    if await server.registry.get(sid) is None:
        return False
    log.info("console: admin disconnects session %s", sid, extra={"sid": sid})
    await server.sio.disconnect(sid, namespace=NAMESPACE)
    return True
