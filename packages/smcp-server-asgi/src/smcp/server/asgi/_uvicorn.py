"""uvicorn's WebSocket protocol with read flow control by queue length.

uvicorn's sans-I/O WebSocket protocol stops reading the socket after every message it queues for
the app and starts again once the app has taken it: two ``epoll_ctl`` calls per message on either
event loop, four per relayed call at the server, and on the plain asyncio loop about 5 % of the
server's CPU in ``selectors``. The protocol here pauses after a message of more than 64 KiB, as
uvicorn does after any, or once ``ws_max_queue`` messages (a uvicorn setting, 32 by default) wait
for the app; it resumes when the app has taken them all. A slow app still stops a fast client,
and what waits stays below ``ws_max_queue`` × 64 KiB plus one message. The messages wait in a
:class:`_Mailbox` instead of uvicorn's ``asyncio.Queue``, whose ``get`` and ``put_nowait`` also
keep a count of unfinished tasks, an ``Event`` and a loop check that nothing here uses.

It relies on uvicorn's ``WebSocketsSansIOProtocol``: ``send_receive_event_to_app`` queues the
message held in ``frames`` and pauses the transport when ``read_paused`` is false (and sets it),
``receive`` resumes when ``read_paused`` is set and ``queue`` is empty, ``queue`` is created in
``__init__`` and used only through ``put_nowait``, ``get``, ``empty`` and ``qsize``, and
``config.ws_max_queue``. Outside :data:`TESTED_UVICORN`, or for another protocol, uvicorn's own
class is used unchanged.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

__all__ = ["TESTED_UVICORN", "uvicorn_ws_protocol"]

logger = logging.getLogger("smcp.server.asgi")

# uvicorn versions the protocol here was checked against: [low, high)
TESTED_UVICORN = ((0, 50), (1, 0))
_SMALL = 64 * 1024  # bytes: a message up to this size does not pause reading on its own


def _version(text: str) -> tuple[int, int]:
    major, minor, *_ = (int("".join(ch for ch in part if ch.isdigit()) or 0) for part in text.split("."))
    return major, minor


def uvicorn_ws_protocol(ws: str | type[Any] = "auto") -> str | type[Any]:
    """What to pass as ``uvicorn.Config(ws=...)`` for ``ws`` (a name uvicorn knows, or a class).

    The sans-I/O ``websockets`` protocol (what ``auto`` picks when ``websockets`` is installed)
    comes back as a subclass that pauses reading by queue length (see the module); anything
    else, and every uvicorn outside the tested range, comes back as given.
    """
    try:
        import uvicorn
        from uvicorn.config import WS_PROTOCOLS
        from uvicorn.importer import import_from_string
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError:
        return ws
    low, high = TESTED_UVICORN
    if not low <= _version(uvicorn.__version__) < high:
        logger.debug(
            "uvicorn %s is outside %s: its own WebSocket protocol is used",
            uvicorn.__version__,
            TESTED_UVICORN,
        )
        return ws
    if isinstance(ws, str):
        target = WS_PROTOCOLS.get(ws, ws)
        if target is None:  # "none"
            return ws
        try:
            cls = import_from_string(target)
        except Exception:  # uvicorn reports a bad name itself, as it would have
            return ws
    else:
        cls = ws
    if not isinstance(cls, type) or not issubclass(cls, WebSocketsSansIOProtocol):
        return ws
    return _queued(cls)


class _Mailbox:
    """A FIFO of ASGI receive events: ``put_nowait`` wakes one waiting ``get``."""

    __slots__ = ("_getters", "_items", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: collections.deque[Any] = collections.deque()
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake_one()

    def _wake_one(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    async def get(self) -> Any:
        items = self._items
        while not items:
            getter = self._loop.create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                woken = getter.done() and not getter.cancelled()
                getter.cancel()
                if getter in self._getters:
                    self._getters.remove(getter)
                if woken and items:  # pass the wake-up on to the next waiting get
                    self._wake_one()
                raise
        return items.popleft()


_classes: dict[type[Any], type[Any]] = {}


def _queued(base: type[Any]) -> type[Any]:
    if base in _classes:
        return _classes[base]

    class SMCPWebSocketProtocol(base):  # type: ignore[misc]
        read_paused: bool
        frames: list[bytes]
        queue: Any
        transport: Any
        config: Any

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.queue = _Mailbox(self.loop)

        def send_receive_event_to_app(self) -> None:
            paused = self.read_paused
            small = sum(map(len, self.frames)) <= _SMALL
            before = self.queue.qsize()
            self.read_paused = True  # uvicorn pauses only when this is false
            try:
                super().send_receive_event_to_app()
            finally:
                self.read_paused = paused
            queued = self.queue.qsize()
            if paused or queued == before:  # already paused, or dropped (uvicorn is closing)
                return
            if not small or queued >= max(1, self.config.ws_max_queue):
                self.read_paused = True
                self.transport.pause_reading()

    SMCPWebSocketProtocol.__qualname__ = SMCPWebSocketProtocol.__name__ = f"SMCP{base.__name__}"
    _classes[base] = SMCPWebSocketProtocol
    return SMCPWebSocketProtocol
