"""Who is connected, in which office, under which name.

The :class:`Registry` protocol is what the server needs from a store of sessions; it is
async so that a shared store (Redis, for a cluster) can implement it. :class:`MemoryRegistry`
keeps everything in dicts with one index per office, so join, leave and lookup are O(1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from smcp.core.roles import Role

if TYPE_CHECKING:
    from smcp.server.core._auth import Principal

__all__ = ["JoinOutcome", "JoinRejected", "MemoryRegistry", "Registry", "Session"]


@dataclass(slots=True)
class Session:
    """One connection. ``role`` sticks to the connection after its first successful join."""

    sid: str
    a2c_version: str | None = None
    principal: Principal | None = None
    role: str | None = None
    name: str | None = None
    office: str | None = None


class JoinRejected(Exception):
    """A join or leave was refused; ``str()`` is the reason sent back to the client."""


class JoinOutcome(NamedTuple):
    """What a successful join changed.

    ``left`` is ``(office, name)`` the session was removed from (a computer moving, or a
    rename inside the same office); ``entered`` is false when nothing changed at all.
    """

    left: tuple[str, str] | None
    entered: bool


class Registry(Protocol):
    """Storage of sessions and office membership. Every method is atomic."""

    async def add(self, session: Session) -> None:
        """Record a new connection (not in any office yet)."""

    async def get(self, sid: str) -> Session | None:
        """The session of ``sid``, or ``None``."""

    async def remove(self, sid: str) -> Session | None:
        """Forget ``sid`` and its office membership; return the session as it was."""

    async def join(self, sid: str, role: str, name: str, office: str, *, max_agents: int) -> JoinOutcome:
        """Put ``sid`` into ``office`` as ``name``, or raise :class:`JoinRejected`.

        Nothing changes when it raises. A computer in another office leaves it first; an
        agent must leave explicitly. Names are unique per office.
        """

    async def leave(self, sid: str, office: str) -> Session:
        """Take ``sid`` out of ``office``; raise :class:`JoinRejected` if it is not in it.

        Returns a copy of the session as it was before leaving.
        """

    async def lookup(self, office: str, name: str) -> Session | None:
        """The member of ``office`` called ``name``."""

    async def members(self, office: str) -> list[Session]:
        """Members of ``office`` in join order."""

    async def office_count(self) -> int:
        """Number of non-empty offices."""

    async def offices(self) -> list[str]:
        """Ids of the non-empty offices (read-only; the operator console lists them)."""


class MemoryRegistry:
    """The in-process :class:`Registry`: plain dicts, an index per office."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        # office -> name -> session; dicts keep insertion (= join) order.
        self._offices: dict[str, dict[str, Session]] = {}
        self._agents: dict[str, int] = {}

    async def add(self, session: Session) -> None:
        self._sessions[session.sid] = session

    async def get(self, sid: str) -> Session | None:
        return self._sessions.get(sid)

    def get_nowait(self, sid: str) -> Session | None:
        """Synchronous :meth:`get` for callers that know the registry is in memory."""
        return self._sessions.get(sid)

    async def remove(self, sid: str) -> Session | None:
        session = self._sessions.pop(sid, None)
        if session is not None and session.office is not None:
            snapshot = _copy(session)
            self._drop_member(session)
            return snapshot
        return session

    async def join(self, sid: str, role: str, name: str, office: str, *, max_agents: int) -> JoinOutcome:
        session = self._sessions.get(sid)
        if session is None:
            raise JoinRejected("Connection is not registered; reconnect and join again")
        if session.role is not None and session.role != role:
            raise JoinRejected(
                f"Role mismatch: this connection joined as {session.role}; "
                f"open a new connection to join as {role}"
            )
        members = self._offices.get(office)
        if session.office == office:
            if session.name == name:
                return JoinOutcome(None, False)
            if members is not None and name in members:
                raise _name_taken(members[name], name, office)
            old = session.name or ""
            if members is not None:
                members.pop(old, None)
                members[name] = session
            session.name = name
            return JoinOutcome((office, old), True)
        if session.office is not None and role == Role.AGENT:
            raise JoinRejected(
                f"Agent is already in office '{session.office}'; send server:leave_office first"
            )
        if members is not None and name in members:
            raise _name_taken(members[name], name, office)
        if role == Role.AGENT and self._agents.get(office, 0) >= max_agents:
            raise JoinRejected(f"Office '{office}' already has an agent; only {max_agents} allowed")
        left: tuple[str, str] | None = None
        if session.office is not None:
            left = (session.office, session.name or "")
            self._drop_member(session)
        session.role = role
        session.name = name
        session.office = office
        if members is None:
            members = self._offices[office] = {}
        members[name] = session
        if role == Role.AGENT:
            self._agents[office] = self._agents.get(office, 0) + 1
        return JoinOutcome(left, True)

    async def leave(self, sid: str, office: str) -> Session:
        session = self._sessions.get(sid)
        if session is None or session.office != office:
            raise JoinRejected(f"Not a member of office '{office}'")
        snapshot = _copy(session)
        self._drop_member(session)
        return snapshot

    async def lookup(self, office: str, name: str) -> Session | None:
        members = self._offices.get(office)
        return None if members is None else members.get(name)

    def lookup_nowait(self, office: str, name: str) -> Session | None:
        """Synchronous :meth:`lookup`."""
        members = self._offices.get(office)
        return None if members is None else members.get(name)

    async def members(self, office: str) -> list[Session]:
        members = self._offices.get(office)
        return [] if members is None else list(members.values())

    async def office_count(self) -> int:
        return len(self._offices)

    async def offices(self) -> list[str]:
        return list(self._offices)

    def _drop_member(self, session: Session) -> None:
        office = session.office
        if office is None:
            return
        members = self._offices.get(office)
        if members is not None:
            if members.get(session.name or "") is session:
                del members[session.name or ""]
            if not members:
                del self._offices[office]
        if session.role == Role.AGENT:
            count = self._agents.get(office, 0) - 1
            if count > 0:
                self._agents[office] = count
            else:
                self._agents.pop(office, None)
        session.office = None


def _name_taken(holder: Session, name: str, office: str) -> JoinRejected:
    if holder.role == Role.COMPUTER:
        # 0.4.2's wording, which clients match on (it names no sid).
        return JoinRejected(f"Computer with name '{name}' already exists in room '{office}'")
    return JoinRejected(f"Name '{name}' is already taken in office '{office}'")


def _copy(session: Session) -> Session:
    return Session(
        session.sid, session.a2c_version, session.principal, session.role, session.name, session.office
    )
