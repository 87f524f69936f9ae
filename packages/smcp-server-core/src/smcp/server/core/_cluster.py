"""Cluster mode: several nodes sharing one Redis (``pip install 'smcp-server-core[redis]'``).

A :class:`RedisCluster` gives an :class:`~smcp.server.core.SMCPServer` its shared registry
(:class:`~smcp.server.core._redis_registry.RedisRegistry`), python-socketio's ``AsyncRedisManager``
for room broadcasts across nodes, a heartbeat with a TTL (survivors purge a node whose heartbeat
expired), and the request/reply channel the relay uses to reach a Computer held by another node.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from smcp.server.core._redis_lua import BEAT as _BEAT_SCRIPT
from smcp.server.core._redis_registry import RedisRegistry

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    import socketio

__all__ = ["RedisCluster"]

log = logging.getLogger("smcp.server")

#: ``handler(message)`` for each request/reply message addressed to this node.
OnMessage = Callable[[dict[str, Any]], Awaitable[None]]

_BYTES = "__smcp_bytes__"


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _BYTES in obj:
        return base64.b64decode(obj[_BYTES])
    return obj


def encode(message: dict[str, Any]) -> str:
    """JSON, with ``bytes`` (binary attachments) carried as base64 so they survive the hop."""
    return json.dumps(message, default=_default, separators=(",", ":"))


def decode(text: str | bytes) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(text, object_hook=_hook)
    return message


class RedisCluster:
    """What one node needs to be part of a cluster on the Redis at ``url``.

    ``prefix`` names every key and channel (nodes of one cluster share it). A node's heartbeat key
    lives ``node_ttl`` seconds and is refreshed every ``heartbeat`` seconds; when it expires the
    survivors purge the node's sessions and calls waiting for its Computers answer 404.
    ``max_connections`` bounds the Redis connection pool of this node (calls wait for a free one).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "smcp",
        node: str | None = None,
        node_ttl: float = 3.0,
        heartbeat: float = 1.0,
        max_connections: int = 64,
    ) -> None:
        try:
            import redis.asyncio as aioredis
            import socketio
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("cluster mode needs redis: pip install 'smcp-server-core[redis]'") from exc
        if not 0 < heartbeat < node_ttl:
            raise ValueError(
                f"heartbeat ({heartbeat} s) must be > 0 and shorter than node_ttl ({node_ttl} s)"
            )
        self.url = url
        self.prefix = prefix
        self.node = node or uuid.uuid4().hex[:12]
        self.node_ttl = node_ttl
        self.heartbeat = heartbeat
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.retry import Retry

        # After a Redis restart every pooled connection is stale: retry once on a fresh one.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=5,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            retry_on_error=[RedisConnectionError],
        )
        self.redis: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self.registry = RedisRegistry(self.redis, self.node, prefix=prefix)
        self._beat_script = self.redis.register_script(_BEAT_SCRIPT)
        self.client_manager: socketio.AsyncManager = socketio.AsyncRedisManager(
            url,
            channel=f"{prefix}:sio",
            redis_options={"socket_connect_timeout": 2, "health_check_interval": 10},
        )
        self._beat_ok = False
        #: Whether this node's request/reply channel is subscribed (replies can reach it).
        self.listening = False
        self.on_message: OnMessage | None = None
        #: Called with the name of a node whose heartbeat expired (every node calls it for itself).
        self.on_node_dead: Callable[[str], None] | None = None
        #: The other nodes this node waits for (checked on every heartbeat).
        self.watched: Callable[[], Iterable[str]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dead: set[str] = set()
        self._subscribed = asyncio.Event()

    @property
    def healthy(self) -> bool:
        """Whether the last heartbeat reached Redis and this node's channel is subscribed."""
        return self._beat_ok and self.listening

    def channel(self, node: str) -> str:
        """The request/reply channel of ``node``."""
        return f"{self.prefix}:rpc:{node}"

    async def start(self) -> None:
        """Start the heartbeat and the listener; waits (at most 5 s) until both are in place."""
        await self._beat()
        self._tasks.append(asyncio.ensure_future(self._heartbeat_loop()))
        self._tasks.append(asyncio.ensure_future(self._listen_loop()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5)

    async def stop(self) -> None:
        """Stop the tasks and take this node out of the cluster (its sessions are removed)."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        self._tasks.clear()
        try:
            async with asyncio.timeout(3):
                await self.redis.delete(f"{self.prefix}:alive:{self.node}")
                await self.registry.purge(self.node)
        except Exception:
            log.warning("could not leave the cluster cleanly; the other nodes purge this one after its TTL")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis.aclose(), 2)

    async def publish(self, node: str, message: dict[str, Any]) -> bool:
        """Send ``message`` to ``node``; false when no node listens there (it is gone)."""
        from redis.exceptions import ConnectionError as RedisConnectionError

        text = encode(message)
        try:
            receivers = await self.redis.publish(self.channel(node), text)
        except RedisConnectionError:
            # A pooled connection that died with the previous Redis: the pool drops it, retry once.
            receivers = await self.redis.publish(self.channel(node), text)
        return bool(receivers)

    async def nodes(self) -> list[str]:
        """Names of the cluster's live nodes (their heartbeat has not expired), this one included."""
        names = [
            n.decode() if isinstance(n, bytes) else str(n)
            for n in await self.redis.smembers(f"{self.prefix}:nodes")
        ]
        alive = await asyncio.gather(*(self.redis.exists(f"{self.prefix}:alive:{n}") for n in names))
        return sorted(n for n, up in zip(names, alive, strict=True) if up)

    # -- heartbeat ------------------------------------------------------------------------------

    async def _beat(self) -> None:
        ttl_ms = int(self.node_ttl * 1000)
        try:
            watched = self.watched() if self.watched is not None else ()
            result = await self._beat_script(args=[self.prefix, self.node, ttl_ms, *watched])
        except Exception as exc:
            if self._beat_ok:
                log.error("Redis unreachable (%s); joins are refused until it is back", exc)
            self._beat_ok = False
            return
        recovered = not self._beat_ok
        lost = not int(result[0])
        if recovered or lost:
            try:
                await self.registry.restore()
            except Exception:
                log.exception("re-registering this node's sessions failed; retrying")
                return
            if recovered and self._tasks:
                log.warning("Redis is back; %d sessions of this node re-registered", len(self.registry.local))
        self._beat_ok = True
        dead = {d.decode() if isinstance(d, bytes) else str(d) for d in result[1:]}
        for node in dead:
            if self.on_node_dead is not None:
                self.on_node_dead(node)
        for node in dead - self._dead:
            log.warning("node %s stopped beating (its heartbeat expired)", node)
        self._dead = dead
        for node in dead:
            try:
                await self.registry.purge(node)
            except Exception:
                log.exception("purging node %s failed", node)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            await self._beat()

    # -- request/reply listener -----------------------------------------------------------------

    async def _listen_loop(self) -> None:
        delay = 0.2
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel(self.node))
                self.listening = True
                self._subscribed.set()
                delay = 0.2
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        body = decode(message["data"])
                    except ValueError:
                        log.warning("dropped an unreadable cluster message")
                        continue
                    if self.on_message is not None:
                        await self.on_message(body)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening = False
                log.warning("cluster channel lost (%s); resubscribing in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
