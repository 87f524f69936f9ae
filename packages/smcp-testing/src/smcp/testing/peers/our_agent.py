"""Our Agent (``smcp.agent.AsyncAgent``) driven by JSON lines: the twin of ``official_agent.py``.

Runs on the test interpreter (the one with ``smcp-agent`` installed)::

    python our_agent.py --url U --token T --office O --name A

Same protocol as the official driver, from the same loop (``command_lines.py``): prints
``READY``, reads one JSON command per stdin line (``{"id", "cmd", "args", "timeout"?}``) and answers
each on one stdout line with the same ``id``: ``{"id", "result"}`` or ``{"id", "error": {"type",
"code", "message"}}`` (``code`` is the protocol error code of an ``SMCPError``, 4008 for a version
rejection, else ``null``). Commands run concurrently.

Commands are the official driver's vocabulary, answered in the same shapes:

- ``connect`` {version?}; ``join`` {office?, name?, role?} -> ``{"ack": [ok, reason]}``;
  ``leave`` {office?}; ``list_room`` {office?} -> ``{"sessions": [...]}``; ``list_computers`` {office?};
- ``get_tools`` -> ``{"tools"}``, ``get_config``, ``get_desktop`` -> ``{"desktops"}``,
  ``get_resources``, ``get_skills`` -> ``{"skills"}``, ``get_skill`` (``body`` for text files),
  ``get_blob``, ``put_blob`` {computer, data_b64, name_hint?, chunk_size?};
- ``tool_call`` -> the wire dict of the ``CallToolResult``; ``req_id`` {of}; ``cancel`` {req_id};
- ``emit`` / ``call`` {event, data}: raw Socket.IO traffic on ``/smcp``;
- ``notifications``: ``{"event": "notify:<kind>", "data"}`` entries, plus
  ``{"event": "tools_received", "computer", "tools": [names]}`` when the Agent's cache refreshed
  a Computer's tools (the counterpart of the official SDK's automatic re-fetch);
- ``disconnect``, ``quit``.

Joins, leaves and list_room for the Agent's own office use the public API
(``AsyncAgent.join``/``leave``/``sessions``); anything the public API deliberately does not offer
(joining as another role, listing another office) goes out raw, the way the official driver does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from typing import Any

from command_lines import CommandDriver, current_command, peer_arguments, plain_json

NAMESPACE = "/smcp"


def _dump_model(value: Any) -> Any:
    from smcp.core import wire

    try:
        return wire.to_wire(value)
    except Exception:
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)


def to_json(value: Any) -> Any:
    """Plain JSON for Agent return values (pydantic models, dataclasses, MCP results)."""
    return plain_json(value, _dump_model)


class Driver(CommandDriver):
    def __init__(self, args: argparse.Namespace) -> None:
        from smcp.agent import AsyncAgent

        super().__init__()
        self.args = args
        self.agent = AsyncAgent(
            args.url, token=args.token or None, name=args.name, socketio_path=args.socketio_path
        )
        for kind in (
            "enter_office", "leave_office", "update_config", "update_tool_list", "update_desktop",
            "update_skills",
        ):  # fmt: skip
            self.agent.on(kind)(self._recorder(kind))
        self.agent.on("cache_updated")(self._on_cache_updated)

    def _recorder(self, kind: str) -> Any:
        async def record(note: Any) -> None:
            self.notifications.append({"event": f"notify:{kind}", "data": to_json(note.data)})

        return record

    async def _on_cache_updated(self, computer: str, view: Any) -> None:
        if view is not None and view.tools is not None:
            names = [tool.name for tool in view.tools]
            self.notifications.append({"event": "tools_received", "computer": computer, "tools": names})

    async def _raw_call(self, event: str, data: Any, timeout: float = 20.0) -> Any:
        from smcp.core.errors import error_from_payload, is_error_payload

        reply = await self.agent._call(event, data, timeout)
        if is_error_payload(reply):
            raise error_from_payload(reply)
        return reply

    # -- commands -----------------------------------------------------------------------------
    async def cmd_connect(self, version: str | None = None) -> Any:
        if version is not None:  # pretend to speak another protocol version (version-gate tests)
            self.agent._protocol_version = version
        await self.agent.connect()
        return {"connected": True}

    async def cmd_join(self, office: str | None = None, name: str | None = None, role: str = "agent") -> Any:
        from smcp.agent import JoinRefusedError

        office = office or self.args.office
        if role != "agent" or (name is not None and name != self.args.name):
            payload = {"role": role, "name": name or self.args.name, "office_id": office}
            return {"ack": to_json(await self.agent._call("server:join_office", payload, 20.0))}
        try:
            await self.agent.join(office)
        except JoinRefusedError as exc:
            return {"ack": [False, exc.reason]}
        return {"ack": [True, None]}

    async def cmd_leave(self, office: str | None = None) -> Any:
        from smcp.agent import JoinRefusedError

        if office is not None and office != self.agent.office:
            return {
                "ack": to_json(await self.agent._call("server:leave_office", {"office_id": office}, 20.0))
            }
        try:
            await self.agent.leave()
        except JoinRefusedError as exc:
            return {"ack": [False, exc.reason]}
        return {"ack": [True, None]}

    async def cmd_list_room(self, office: str | None = None) -> Any:
        from smcp.core.naming import new_req_id

        if office is None or office == self.agent.office:
            return {"sessions": to_json(await self.agent.sessions())}
        payload = {"agent": self.args.name, "req_id": new_req_id(), "office_id": office}
        return to_json(await self._raw_call("server:list_room", payload))

    async def cmd_list_computers(self, office: str | None = None) -> Any:
        return to_json(await self.agent.computers())

    async def cmd_get_tools(self, computer: str) -> Any:
        return {"tools": to_json(await self.agent.get_tools(computer))}

    async def cmd_get_config(self, computer: str) -> Any:
        return to_json(await self.agent.get_config(computer))

    async def cmd_get_desktop(self, computer: str, size: int | None = None, window: str | None = None) -> Any:
        return {"desktops": await self.agent.get_desktop(computer, size=size, window=window)}

    async def cmd_get_resources(self, computer: str, mcp_server: str, cursor: str | None = None) -> Any:
        return to_json(await self.agent.get_resources(computer, mcp_server, cursor))

    async def cmd_get_skills(self, computer: str) -> Any:
        return {"skills": to_json(await self.agent.get_skills(computer))}

    async def cmd_get_skill(self, computer: str, name: str, rel_path: str | None = None) -> Any:
        skill = await self.agent.get_skill(computer, name, rel_path)
        answer: dict[str, Any] = {
            "name": skill.name,
            "rel_path": skill.rel_path,
            "mime_type": skill.mime_type,
            "sha256": skill.sha256,
            "total_size": skill.total_size,
        }
        try:
            answer["body"] = skill.text
        except UnicodeDecodeError:
            answer["data_b64"] = base64.b64encode(skill.data).decode("ascii")
        return answer

    async def cmd_get_blob(
        self, computer: str, blob_handle: str, chunk_offset: int = 0, max_chunk_bytes: int | None = None
    ) -> Any:
        return to_json(await self.agent.get_blob(computer, blob_handle, chunk_offset, max_chunk_bytes))

    async def cmd_put_blob(
        self, computer: str, data_b64: str, name_hint: str | None = None, chunk_size: int | None = None
    ) -> Any:
        data = base64.b64decode(data_b64)
        if chunk_size is None:
            result = await self.agent.put_blob(computer, data, name_hint=name_hint)
        else:
            result = await self.agent.put_blob(computer, data, name_hint=name_hint, chunk_size=chunk_size)
        return to_json(result)

    async def cmd_tool_call(
        self, computer: str, tool_name: str, params: dict[str, Any], timeout: int = 20
    ) -> Any:
        from smcp.core import results
        from smcp.core.naming import new_req_id

        req_id = new_req_id()
        self.req_ids[current_command.get()] = req_id
        result = await self.agent.call_tool(computer, tool_name, params, timeout, req_id=req_id)
        return results.to_wire(result)

    async def cmd_cancel(self, req_id: str) -> Any:
        await self.agent.cancel(req_id)
        return {"sent": True}

    async def cmd_emit(self, event: str, data: Any = None) -> Any:
        await self.agent._client().emit(event, data, namespace=NAMESPACE)
        return {"sent": True}

    async def cmd_call(self, event: str, data: Any = None, timeout: int = 20) -> Any:
        return to_json(await self.agent._call(event, data, float(timeout)))

    async def cmd_disconnect(self) -> Any:
        await asyncio.wait_for(self.agent.disconnect(), 5)
        return {"disconnected": True}

    async def cmd_quit(self) -> Any:
        try:
            await asyncio.wait_for(self.agent.close(), 5)
        finally:
            self.done.set()
        return {"bye": True}

    # -- plumbing -----------------------------------------------------------------------------
    def error_code(self, exc: BaseException) -> int | None:
        from smcp.core.errors import SMCPError

        return exc.error_code if isinstance(exc, SMCPError) else None

    async def finish(self) -> None:
        await asyncio.wait_for(self.agent.disconnect(), 5)


async def run(args: argparse.Namespace) -> None:
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    await Driver(args).serve()


def main() -> None:
    asyncio.run(run(peer_arguments(__doc__).parse_args()))


if __name__ == "__main__":
    main()
