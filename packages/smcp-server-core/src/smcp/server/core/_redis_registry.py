"""The :class:`~smcp.server.core._registry.Registry` of a cluster, shared by every node through Redis.

Every change is one Lua script (:mod:`._redis_lua`), so two nodes racing for the last agent seat of
an office or for one Computer name cannot both win. Each node also keeps its own sessions in memory:
only the node holding a connection changes its session, so reads of local sessions need no round
trip, and while Redis is unreachable local lookups still work and :meth:`RedisRegistry.restore`
writes them back once it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from smcp.core.errors import InternalError
from smcp.core.roles import Role
from smcp.server.core import _redis_lua as lua
from smcp.server.core._auth import Principal
from smcp.server.core._registry import JoinOutcome, JoinRejected, Session, _copy, _name_taken

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisRegistry", "RegistryUnavailable"]

log = logging.getLogger("smcp.server")

#: Called with the sessions a dead node held in offices, after this node purged them.
OnPurged = Callable[[list[Session]], Awaitable[None]]


class RegistryUnavailable(JoinRejected):
    """Redis could not be reached; nothing was changed."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Session registry (Redis) unavailable; {what}, retry later")


class RedisRegistry:
    """Sessions and offices in Redis under ``prefix``; this node is ``node``.

    A name or seat held by a session of a node whose heartbeat expired does not block a join: the
    dead node is purged first (``on_purged`` then announces its members' departure).
    """

    def __init__(self, client: aioredis.Redis, node: str, *, prefix: str = "smcp") -> None:
        self.redis = client
        self.node = node
        self.prefix = prefix
        self.local: dict[str, Session] = {}
        #: (office, name) -> this node's session holding that name (names are unique per office,
        #: so a local holder answers a lookup without a round trip).
        self._local_names: dict[tuple[str, str], Session] = {}
        #: Sessions of this node that ended while Redis was unreachable (removed on restore).
        self.orphans: set[str] = set()
        self.on_purged: OnPurged | None = None
        self._scripts = {
            name: client.register_script(getattr(lua, name))
            for name in ("JOIN", "LEAVE", "REMOVE", "LOOKUP", "MEMBERS", "PURGE", "RESTORE")
        }

    async def _run(self, name: str, *args: Any) -> Any:
        return await self._scripts[name](args=[self.prefix, *args])

    # -- the Registry protocol ------------------------------------------------------------------

    async def add(self, session: Session) -> None:
        session.node = self.node
        key = f"{self.prefix}:s:{session.sid}"
        fields: dict[Any, Any] = {"node": self.node, "v": session.a2c_version or "", "pid": _pid(session)}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.sadd(f"{self.prefix}:n:{self.node}", session.sid)
            await pipe.execute()
        self.local[session.sid] = session

    async def get(self, sid: str) -> Session | None:
        session = self.local.get(sid)
        if session is not None:
            return session
        fields = await self.redis.hmget(
            f"{self.prefix}:s:{sid}", "node", "role", "name", "office", "v", "pid"
        )
        if fields[0] is None:
            return None
        return _session(sid, fields)

    def get_nowait(self, sid: str) -> Session | None:
        """This node's session ``sid`` (no round trip; ``None`` for sessions of other nodes)."""
        return self.local.get(sid)

    async def remove(self, sid: str) -> Session | None:
        session = self.local.pop(sid, None)
        if session is not None:
            self._unindex(session)
        try:
            fields = await self._run("REMOVE", sid)
        except Exception:
            if session is None:
                raise
            log.warning("Redis unreachable; session %s will be removed from it on recovery", sid)
            self.orphans.add(sid)
            return _copy(session)
        if session is not None:
            return _copy(session)
        return None if not fields else _session(sid, fields)

    async def join(self, sid: str, role: str, name: str, office: str, *, max_agents: int) -> JoinOutcome:
        for _ in range(3):
            try:
                result = await self._run("JOIN", sid, role, name, office, max_agents)
            except Exception:
                log.warning("join refused: Redis unreachable")
                raise RegistryUnavailable("the join was not applied") from None
            kind = _text(result[0])
            if kind == "stale":
                await self.purge(_text(result[1]))
                continue
            if kind == "err":
                raise _rejection(
                    _text(result[1]),
                    _text(result[2]),
                    role=role,
                    name=name,
                    office=office,
                    max_agents=max_agents,
                )
            left_office, left_name, entered = _text(result[1]), _text(result[2]), int(result[3])
            session = self.local.get(sid)
            if session is not None and entered:
                self._unindex(session)
                session.role, session.name, session.office = role, name, office
                self._local_names[(office, name)] = session
            return JoinOutcome((left_office, left_name) if left_office else None, bool(entered))
        raise JoinRejected(f"Office '{office}' is being cleaned up after a node failure; retry")

    async def leave(self, sid: str, office: str) -> Session:
        try:
            fields = await self._run("LEAVE", sid, office)
        except Exception:
            raise RegistryUnavailable("the leave was not applied") from None
        if not fields:
            raise JoinRejected(f"Not a member of office '{office}'")
        session = self.local.get(sid)
        if session is None:
            return _session(sid, fields)
        snapshot = _copy(session)
        self._unindex(session)
        session.office = None
        return snapshot

    async def lookup(self, office: str, name: str) -> Session | None:
        local = self._local_names.get((office, name))
        if local is not None:
            return local
        try:
            found = await self._run("LOOKUP", office, name)
        except Exception:
            raise InternalError(
                f"'{name}' is not connected to this node and the session registry (Redis) is "
                "unreachable; retry later",
                code=503,
                details={"computer_name": name},
            ) from None
        if not found:
            return None
        sid = _text(found[0])
        return self.local.get(sid) or _session(sid, found[1:])

    async def members(self, office: str) -> list[Session]:
        try:
            flat = await self._run("MEMBERS", office)
        except Exception as exc:
            log.warning("members from Redis failed (%s); answering with this node's sessions", exc)
            return [s for s in self.local.values() if s.office == office]
        out: list[Session] = []
        for i in range(0, len(flat), 7):
            sid = _text(flat[i])
            out.append(self.local.get(sid) or _session(sid, flat[i + 1 : i + 7]))
        return out

    async def office_count(self) -> int:
        try:
            return int(await self.redis.scard(f"{self.prefix}:offices"))
        except Exception:
            return len({s.office for s in self.local.values() if s.office is not None})

    async def offices(self) -> list[str]:
        try:
            return sorted(_text(o) for o in await self.redis.smembers(f"{self.prefix}:offices"))
        except Exception:
            log.warning("offices from Redis failed; answering with this node's offices")
            return sorted({s.office for s in self.local.values() if s.office is not None})

    # -- cluster upkeep -------------------------------------------------------------------------

    async def purge(self, node: str) -> list[Session]:
        """Forget every session of ``node`` if its heartbeat expired; returns those that were in an office.

        Atomic: of several nodes purging the same dead node, one gets the sessions.
        """
        flat = await self._run("PURGE", node)
        gone = [_session(_text(flat[i]), flat[i + 1 : i + 7]) for i in range(0, len(flat), 7)]
        if gone:
            log.warning("node %s is gone; purged %d of its sessions", node, len(gone))
            if self.on_purged is not None:
                await self.on_purged(gone)
        return gone

    async def restore(self) -> None:
        """Write this node's live sessions back into Redis (after it lost them or was unreachable)."""
        for sid in list(self.orphans):
            await self._run("REMOVE", sid)
            self.orphans.discard(sid)
        for session in list(self.local.values()):
            ok = await self._run(
                "RESTORE",
                session.sid,
                self.node,
                session.a2c_version or "",
                _pid(session),
                session.role or "",
                session.name or "",
                session.office or "",
            )
            if not ok:
                log.warning(
                    "after the Redis outage, %r of office %r was taken by another connection; "
                    "session %s is no longer in that office",
                    session.name,
                    session.office,
                    session.sid,
                )
                self._unindex(session)
                session.office = None

    def _unindex(self, session: Session) -> None:
        key = (session.office or "", session.name or "")
        if self._local_names.get(key) is session:
            del self._local_names[key]


def _pid(session: Session) -> str:
    return session.principal.id if session.principal is not None else ""


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _session(sid: str, fields: Any) -> Session:
    """A session of another node from its ``node, role, name, office, v, pid`` fields."""
    node, role, name, office, version, pid = (_text(f) or None for f in fields)
    return Session(sid, version, Principal(pid) if pid else None, role, name, office, node)


# The texts match MemoryRegistry's (tests/test_server_cluster_registry.py compares them).
def _rejection(code: str, detail: str, *, role: str, name: str, office: str, max_agents: int) -> JoinRejected:
    if code == "unregistered":
        return JoinRejected("Connection is not registered; reconnect and join again")
    if code == "role":
        return JoinRejected(
            f"Role mismatch: this connection joined as {detail}; open a new connection to join as {role}"
        )
    if code == "in_office":
        return JoinRejected(f"Agent is already in office '{detail}'; send server:leave_office first")
    if code == "taken":
        return _name_taken(Session("", role=detail or Role.AGENT.value), name, office)
    return JoinRejected(f"Office '{office}' already has an agent; only {max_agents} allowed")
