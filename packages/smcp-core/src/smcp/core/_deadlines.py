"""Deadlines of many waiting futures on one loop timer.

A request that waits for an ack needs a deadline, and ``loop.call_later`` per request costs a
timer handle, a heap push and a cancel on every call, for a timer that almost never fires.
:class:`Deadlines` keeps each future's due time in a dict and one timer armed at the earliest;
the timer is moved only when a future is due before it. When it fires, every future due by then
is expired (a future due within 1 ms of the timer goes with it) and the timer is armed at the
next due time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["Deadlines"]

_SLACK = 0.001  # seconds: futures due this close to the timer expire with it


class Deadlines:
    """Expire futures that are still waiting when their deadline passes.

    ``expire(future, *args)`` is called for each future still in the table at its due time
    (the table forgets it first); :meth:`discard` takes a future out once it is answered. The
    table binds to the loop of the first future it is given.
    """

    def __init__(self, expire: Callable[..., None]) -> None:
        self._expire = expire
        self._due: dict[asyncio.Future[Any], tuple[float, tuple[Any, ...]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed = 0.0

    def __len__(self) -> int:
        return len(self._due)

    def add(self, fut: asyncio.Future[Any], seconds: float, *args: Any) -> None:
        """Expire ``fut`` with ``expire(fut, *args)`` unless it is discarded within ``seconds``."""
        loop = fut.get_loop()
        if loop is not self._loop:
            self._rebind(loop)
        when = loop.time() + seconds
        self._due[fut] = (when, args)
        if self._timer is None or when < self._armed:
            self._arm(when)

    def discard(self, fut: asyncio.Future[Any]) -> None:
        self._due.pop(fut, None)

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = loop
        self._due = {fut: due for fut, due in self._due.items() if fut.get_loop() is loop}

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._armed = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        assert self._loop is not None
        self._timer = None
        now = self._loop.time() + _SLACK
        due = [(fut, args) for fut, (when, args) in self._due.items() if when <= now]
        for fut, _ in due:
            del self._due[fut]
        if self._due:
            self._arm(min(when for when, _ in self._due.values()))
        for fut, args in due:
            if not fut.done():
                self._expire(fut, *args)
