"""A scriptable official Agent (``a2c_smcp.agent.AsyncSMCPAgentClient``) driven by JSON lines.

Runs inside the official venv::

    python official_agent.py --url U --token T --office O --name A [--socketio-path P]

Prints ``READY`` once it accepts commands. Then every stdin line is one command::

    {"id": 7, "cmd": "get_tools", "args": {"computer": "c1"}, "timeout": 20}

and every answer is one stdout line carrying the same ``id``::

    {"id": 7, "result": {...}}                                  # success (plain JSON)
    {"id": 7, "error": {"type": "TimeoutError", "code": null, "message": "..."}}  # any exception

Commands run concurrently (answers may come out of order; match them by ``id``). ``timeout`` bounds
the whole command (default 30 s; for ``tool_call`` the call's own timeout + 10 s).

Commands and ``args``:

- ``connect`` {version?}: ``connect_to_server(url)`` with ``DefaultAgentAuthProvider(api_key=token)``
  (an empty ``--token`` sends no auth); ``version`` replaces the advertised protocol version.
- ``join`` {office?, name?, role?}: raw ``call("server:join_office", ..., namespace="/smcp")``;
  result ``{"ack": [...]}`` (the official ``join_office()`` helper is fire-and-forget).
- ``leave`` {office?}: raw ``call("server:leave_office")``; result ``{"ack": [...]}``.
- ``list_room`` {office?}: raw ``call("server:list_room")``; result = the raw ack.
- ``list_computers`` {office?}: ``get_computers_in_office``.
- ``get_tools`` {computer}, ``get_config`` {computer}, ``get_desktop`` {computer, size?, window?},
  ``get_resources`` {computer, mcp_server, cursor?}, ``get_skills`` {computer},
  ``get_skill`` {computer, name, rel_path?}, ``get_blob`` {computer, blob_handle, chunk_offset?,
  max_chunk_bytes?}, ``put_blob`` {computer, data_b64, name_hint?, chunk_size?}: the SDK methods.
- ``tool_call`` {computer, tool_name, params, timeout}: ``emit_tool_call``; result = the
  ``CallToolResult`` as ``model_dump(mode="json")``. ``req_id`` {of: <command id>}: the ``req_id``
  the SDK generated for that tool_call command (for ``cancel``).
- ``cancel`` {req_id}: raw ``emit("server:tool_call_cancel", {agent, req_id})``.
- ``emit`` / ``call`` {event, data}: raw emit / call on ``/smcp`` (call returns the ack).
- ``notifications`` {}: every ``notify:*`` received since the last time (then cleared), as
  ``{"event", "data"}``; plus ``{"event": "tools_received", "computer", "tools": [names]}`` entries
  from the SDK's automatic re-fetch.
- ``disconnect`` {}, ``quit`` {}: disconnect; ``quit`` also ends the process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from official_common import CommandDriver, current_command, import_official, peer_arguments, plain_json

NAMESPACE = "/smcp"
NOTIFY_EVENTS = (
    "notify:enter_office",
    "notify:leave_office",
    "notify:update_config",
    "notify:update_tool_list",
    "notify:update_desktop",
    "notify:update_skills",
    "notify:tool_call_cancel",
)


def to_json(value: Any) -> Any:
    """Plain JSON for SDK return values (pydantic models, dataclasses, tuples, TypedDicts)."""
    return plain_json(value, lambda model: model.model_dump(mode="json"))


class Driver(CommandDriver):
    def __init__(self, args: argparse.Namespace) -> None:
        from a2c_smcp.agent import AsyncSMCPAgentClient, DefaultAgentAuthProvider

        super().__init__()
        self.args = args
        auth = DefaultAgentAuthProvider(agent_id=args.name, office_id=args.office, api_key=args.token)
        self.client = AsyncSMCPAgentClient(auth_provider=auth, event_handler=Recorder(self.notifications))
        self._record_notifications()
        self._record_tool_call_req_ids()

    def _record_notifications(self) -> None:
        handlers = self.client.handlers.setdefault(NAMESPACE, {})
        for event in NOTIFY_EVENTS:
            handlers[event] = self._recording(event, handlers.get(event))

    def _recording(self, event: str, original: Callable[..., Any] | None) -> Callable[..., Awaitable[Any]]:
        async def handler(*data: Any) -> Any:
            self.notifications.append(
                {"event": event, "data": to_json(data[0] if len(data) == 1 else list(data))}
            )
            if original is not None:
                result = original(*data)
                if asyncio.iscoroutine(result):
                    return await result
                return result
            return None

        return handler

    def _record_tool_call_req_ids(self) -> None:
        build = self.client.create_tool_call_request

        def capturing(*a: Any, **kw: Any) -> Any:
            req = build(*a, **kw)
            command_id = current_command.get()
            if command_id is not None:
                self.req_ids[command_id] = req["req_id"]
            return req

        self.client.create_tool_call_request = capturing  # type: ignore[method-assign]

    # -- commands -----------------------------------------------------------------------------
    async def cmd_connect(self, version: str | None = None) -> Any:
        if version is not None:  # pretend to speak another protocol version (version-gate tests)
            sys.modules["a2c_smcp.agent.client"].PROTOCOL_VERSION = version
        await self.client.connect_to_server(self.args.url, socketio_path=self.args.socketio_path)
        return {"connected": True, "sid": self.client.get_sid(NAMESPACE)}

    async def cmd_join(self, office: str | None = None, name: str | None = None, role: str = "agent") -> Any:
        payload = {"role": role, "name": name or self.args.name, "office_id": office or self.args.office}
        ack = await self.client.call("server:join_office", payload, namespace=NAMESPACE, timeout=20)
        return {"ack": to_json(ack)}

    async def cmd_leave(self, office: str | None = None) -> Any:
        ack = await self.client.call(
            "server:leave_office", {"office_id": office or self.args.office}, namespace=NAMESPACE, timeout=20
        )
        return {"ack": to_json(ack)}

    async def cmd_list_room(self, office: str | None = None) -> Any:
        payload = {
            "agent": self.args.name,
            "req_id": uuid.uuid4().hex,
            "office_id": office or self.args.office,
        }
        return to_json(await self.client.call("server:list_room", payload, namespace=NAMESPACE, timeout=20))

    async def cmd_list_computers(self, office: str | None = None) -> Any:
        return to_json(await self.client.get_computers_in_office(office or self.args.office))

    async def cmd_get_tools(self, computer: str) -> Any:
        return to_json(await self.client.get_tools_from_computer(computer))

    async def cmd_get_config(self, computer: str) -> Any:
        return to_json(await self.client.get_config_from_computer(computer))

    async def cmd_get_desktop(self, computer: str, size: int | None = None, window: str | None = None) -> Any:
        return to_json(await self.client.get_desktop_from_computer(computer, size=size, window=window))

    async def cmd_get_resources(self, computer: str, mcp_server: str, cursor: str | None = None) -> Any:
        return to_json(await self.client.get_resources(computer, mcp_server, cursor=cursor))

    async def cmd_get_skills(self, computer: str) -> Any:
        return to_json(await self.client.get_skills(computer))

    async def cmd_get_skill(self, computer: str, name: str, rel_path: str | None = None) -> Any:
        return to_json(await self.client.get_skill(computer, name, rel_path=rel_path))

    async def cmd_get_blob(
        self, computer: str, blob_handle: str, chunk_offset: int = 0, max_chunk_bytes: int | None = None
    ) -> Any:
        ret = await self.client.get_blob(
            computer, blob_handle, chunk_offset=chunk_offset, max_chunk_bytes=max_chunk_bytes
        )
        return to_json(ret)

    async def cmd_put_blob(
        self, computer: str, data_b64: str, name_hint: str | None = None, chunk_size: int | None = None
    ) -> Any:
        data = base64.b64decode(data_b64)
        return to_json(await self.client.put_blob(computer, data, name_hint=name_hint, chunk_size=chunk_size))

    async def cmd_tool_call(
        self, computer: str, tool_name: str, params: dict[str, Any], timeout: int = 20
    ) -> Any:
        return to_json(await self.client.emit_tool_call(computer, tool_name, params, timeout))

    async def cmd_cancel(self, req_id: str) -> Any:
        await self.client.emit(
            "server:tool_call_cancel", {"agent": self.args.name, "req_id": req_id}, namespace=NAMESPACE
        )
        return {"sent": True}

    async def cmd_emit(self, event: str, data: Any = None) -> Any:
        await self.client.emit(event, data, namespace=NAMESPACE)
        return {"sent": True}

    async def cmd_call(self, event: str, data: Any = None, timeout: int = 20) -> Any:
        return to_json(await self.client.call(event, data, namespace=NAMESPACE, timeout=timeout))

    async def cmd_disconnect(self) -> Any:
        await asyncio.wait_for(self.client.disconnect(), 5)
        return {"disconnected": True}

    async def cmd_quit(self) -> Any:
        try:
            await asyncio.wait_for(self.client.disconnect(), 5)
        finally:
            self.done.set()
        return {"bye": True}

    # -- plumbing -----------------------------------------------------------------------------
    def error_code(self, exc: BaseException) -> int | None:
        """The protocol error code an SDK exception carries (4008 for a version rejection)."""
        if type(exc).__name__ == "ProtocolVersionError":
            return 4008
        code = getattr(exc, "code", None)
        return int(code) if isinstance(code, int) else None

    async def finish(self) -> None:
        if self.client.connected:
            await asyncio.wait_for(self.client.disconnect(), 5)


class Recorder:
    """Event handler for the official client: records the SDK's automatic tool re-fetches."""

    def __init__(self, sink: list[dict[str, Any]]) -> None:
        self.sink = sink

    async def on_computer_enter_office(self, data: Any, client: Any) -> None:
        return None

    async def on_computer_leave_office(self, data: Any, client: Any) -> None:
        return None

    async def on_computer_update_config(self, data: Any, client: Any) -> None:
        return None

    async def on_computer_update_tool_list(self, data: Any, client: Any) -> None:
        return None

    async def on_tools_received(self, computer: str, tools: Any, client: Any) -> None:
        names = [tool.get("name") if isinstance(tool, dict) else repr(tool) for tool in tools]
        self.sink.append({"event": "tools_received", "computer": computer, "tools": names})

    async def on_skills_received(self, computer: str, skills: Any, client: Any) -> None:
        self.sink.append({"event": "skills_received", "computer": computer, "skills": to_json(skills)})


async def run(args: argparse.Namespace) -> None:
    import_official()
    driver = Driver(args)
    await driver.serve()


def main() -> None:
    asyncio.run(run(peer_arguments(__doc__).parse_args()))


if __name__ == "__main__":
    main()
