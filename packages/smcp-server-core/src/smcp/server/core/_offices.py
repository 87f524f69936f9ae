"""Offices: join, leave, list_room, and the notifications members send (``server:update_*``, cancel).

Each method here is the business part of one event; :mod:`._handlers` wraps it with the parsing,
the role and office checks and the error answers of its ``EventSpec``.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from smcp.core.errors import ForbiddenError
from smcp.core.events import EVENTS, NAMESPACE, NotifyEvent, ServerEvent
from smcp.core.roles import Role
from smcp.server.core import _tracing
from smcp.server.core._handlers import Call, Handler, object_handler, pair_handler
from smcp.server.core._registry import JoinRejected

if TYPE_CHECKING:
    from smcp.server.core._auth import Principal
    from smcp.server.core._registry import Session
    from smcp.server.core._server import SMCPServer

__all__ = ["Offices"]

log = logging.getLogger("smcp.server")

UPDATES = (
    ServerEvent.UPDATE_CONFIG,
    ServerEvent.UPDATE_TOOL_LIST,
    ServerEvent.UPDATE_DESKTOP,
    ServerEvent.UPDATE_SKILLS,
)


class Offices:
    """Office membership and the notifications it fans out, on behalf of one :class:`SMCPServer`."""

    def __init__(self, server: SMCPServer) -> None:
        self._server = server
        self._registry = server.registry
        self._metrics = server.metrics
        self._settings = server.settings

    def handlers(self) -> dict[str, Handler]:
        """Event name → wrapped handler, for every office event."""
        server = self._server
        found: dict[str, Handler] = {
            ServerEvent.JOIN_OFFICE: pair_handler(
                server,
                EVENTS[ServerEvent.JOIN_OFFICE],
                self.join,
                internal_reason="Internal server error; the join was not applied, try again",
                closing_reason="Server is shutting down; reconnect and join again",
                counted=True,
            ),
            ServerEvent.LEAVE_OFFICE: pair_handler(
                server,
                EVENTS[ServerEvent.LEAVE_OFFICE],
                self.leave,
                internal_reason="Internal server error; try again",
            ),
            ServerEvent.LIST_ROOM: object_handler(server, EVENTS[ServerEvent.LIST_ROOM], self.list_room),
            ServerEvent.TOOL_CALL_CANCEL: object_handler(
                server, EVENTS[ServerEvent.TOOL_CALL_CANCEL], self.cancel
            ),
        }
        for event in UPDATES:
            found[event] = object_handler(server, EVENTS[event], self._update(EVENTS[event].notifies))
        return {str(name): handler for name, handler in found.items()}

    # -- join and leave -----------------------------------------------------------------------

    async def join(self, sid: str, req: Any) -> None:
        office: str = req.office_id
        if not office:
            raise JoinRejected("office_id must not be empty")
        session = await self._registry.get(sid)
        if session is None:
            raise JoinRejected("Connection is not registered; reconnect and join again")
        role: str = req.role
        principal = session.principal
        try:
            name = self._scoped(principal, office, role, req.name)
            if self._server.authorize_office is not None and not await self._authorized(principal, office):
                raise JoinRejected(f"Not allowed to join office '{office}' with this credential")
            name = name or f"{role}_{sid[:6]}"
            if principal is not None and principal.personal:
                await self._take_over(sid, principal, office, name)
            outcome = await self._registry.join(
                sid, role, name, office, max_agents=self._settings.max_agents_per_office
            )
        except JoinRejected as exc:
            self._audit("join_refused", principal, office, role, req.name, reason=str(exc))
            raise
        self._audit("join", principal, office, role, name)
        sio = self._server.sio
        if outcome.left is not None:
            old_office, old_name = outcome.left
            await self._announce(NotifyEvent.LEAVE_OFFICE, old_office, role, old_name, sid)
            if old_office != office:
                await sio.leave_room(sid, old_office, namespace=NAMESPACE)
        if outcome.entered and outcome.left is None:
            self._metrics.member_joined(role)
        if outcome.entered:
            await sio.enter_room(sid, office, namespace=NAMESPACE)
            await self._announce(NotifyEvent.ENTER_OFFICE, office, role, name, sid)
        self._metrics.offices = await self._registry.office_count()

    @staticmethod
    def _scoped(principal: Principal | None, office: str, role: str, name: str | None) -> str | None:
        """The name to join under, within the principal's scope; :class:`JoinRejected` outside it."""
        if principal is None:
            return name
        if principal.role is not None and role != principal.role:
            raise JoinRejected(
                f"This credential may only join as {principal.role}, not as {role} (token claim smcp_role)"
            )
        if principal.offices is not None and office not in principal.offices:
            raise JoinRejected(
                f"Not allowed to join office '{office}' with this credential (token claim smcp_offices)"
            )
        if principal.name is not None:
            if name and name != principal.name:
                raise JoinRejected(
                    f"This credential may only join as '{principal.name}', not '{name}' "
                    "(token claim smcp_name)"
                )
            return principal.name
        return name

    async def _take_over(self, sid: str, principal: Principal, office: str, name: str) -> None:
        """Evict an older session of the same principal that still holds ``name`` in ``office``."""
        holder = await self._registry.lookup(office, name)
        if holder is None or holder.sid == sid or holder.principal is None:
            return
        if holder.principal.personal and holder.principal.id == principal.id:
            log.info(
                "session %s of %r took over the name %r in office %r from %s",
                sid,
                principal.id,
                name,
                office,
                holder.sid,
            )
            await self._server.evict(holder.sid, "taken_over")

    def _audit(
        self, kind: str, principal: Principal | None, office: str, role: str, name: str | None, **extra: Any
    ) -> None:
        audit = self._server.audit
        if audit is not None:
            principal_id = None if principal is None else principal.id
            audit.record(kind, principal=principal_id, office=office, role=role, name=name, **extra)

    async def _authorized(self, principal: Principal | None, office: str) -> bool:
        hook = self._server.authorize_office
        assert hook is not None
        if principal is None:
            return False
        try:
            allowed = hook(principal, office)
            if inspect.isawaitable(allowed):
                allowed = await allowed
        except Exception:
            log.exception("authorize_office hook raised; join refused")
            return False
        return bool(allowed)

    async def leave(self, sid: str, req: Any) -> None:
        office: str = req.office_id
        before = await self._registry.leave(sid, office)
        self._metrics.member_left(before.role or Role.COMPUTER)
        self._audit("leave", before.principal, office, before.role or "", before.name, why="left")
        await self.announce_leave(before, sid)
        await self._server.sio.leave_room(sid, office, namespace=NAMESPACE)
        self._metrics.offices = await self._registry.office_count()

    async def member_gone(self, session: Session) -> None:
        """A member's connection ended (the registry already forgot it): tell its office."""
        if session.office is not None:
            self._metrics.member_left(session.role or Role.COMPUTER)
            await self.announce_leave(session, session.sid)
            self._metrics.offices = await self._registry.office_count()

    async def members_purged(self, sessions: list[Session]) -> None:
        """Cluster mode: members of a dead node were purged; tell their offices (from this node)."""
        for session in sessions:
            await self.member_gone(session)

    async def announce_leave(self, member: Session, skip: str) -> None:
        assert member.office is not None
        await self._announce(
            NotifyEvent.LEAVE_OFFICE, member.office, member.role or Role.COMPUTER, member.name or "", skip
        )

    async def _announce(self, event: NotifyEvent, office: str, role: str, name: str, skip: str) -> None:
        key = Role.AGENT.value if role == Role.AGENT else Role.COMPUTER.value
        self._metrics.notifications_total += 1
        _tracing.short_span(event.value, **{"smcp.office": office, "smcp.role": key, "smcp.name": name})
        await self._server.sio.emit(
            event.value, {"office_id": office, key: name}, to=office, skip_sid=skip, namespace=NAMESPACE
        )

    # -- list_room ----------------------------------------------------------------------------

    async def list_room(self, call: Call) -> dict[str, Any]:
        req = call.req
        office: str = req.office_id
        session = await self._registry.get(call.sid)
        if session is None or session.office != office:
            raise ForbiddenError(
                f"{ServerEvent.LIST_ROOM}: you can only list your own office; join '{office}' first",
                details={"event": ServerEvent.LIST_ROOM.value, "office_id": office},
            )
        sessions = []
        for member in await self._registry.members(office):
            info: dict[str, Any] = {
                "sid": member.sid,
                "name": member.name or "",
                "role": member.role,
                "office_id": member.office or "",
            }
            if member.a2c_version:
                info["a2c_version"] = member.a2c_version
            sessions.append(info)
        return {"sessions": sessions, "req_id": req.req_id}

    # -- notifications from members -----------------------------------------------------------

    def _update(self, notifies: NotifyEvent | None) -> Any:
        assert notifies is not None
        notify = notifies.value

        async def update(call: Call) -> None:
            session = call.session
            assert session is not None
            self._metrics.notifications_total += 1
            _tracing.short_span(notify, **{"smcp.office": session.office, "smcp.computer": session.name})
            await self._server.sio.emit(
                notify, {"computer": session.name}, to=session.office, skip_sid=call.sid, namespace=NAMESPACE
            )

        return update

    async def cancel(self, call: Call) -> None:
        session = call.session
        assert session is not None
        event = ServerEvent.TOOL_CALL_CANCEL.value
        if call.req.agent != session.name:
            raise ForbiddenError(
                f"{event}: field 'agent' must be your own name '{session.name}'",
                details={"event": event, "field": "agent", "reason": "not_sender"},
            )
        if self._server.audit is not None:
            self._server.audit.cancelled(session.office, call.req.req_id)
        self._metrics.notifications_total += 1
        cancelled = {"smcp.office": session.office, "smcp.req_id": call.req.req_id}
        _tracing.short_span(NotifyEvent.TOOL_CALL_CANCEL.value, **cancelled)
        await self._server.sio.emit(
            NotifyEvent.TOOL_CALL_CANCEL.value,
            {"agent": session.name, "req_id": call.req.req_id},
            to=session.office,
            skip_sid=call.sid,
            namespace=NAMESPACE,
        )
