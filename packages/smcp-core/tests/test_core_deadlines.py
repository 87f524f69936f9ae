"""One timer for the deadlines of many waiting futures (``smcp.core._deadlines``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smcp.core._deadlines import Deadlines

pytestmark = pytest.mark.anyio  # the root conftest's anyio_backend picks asyncio


def _expired(log: list[tuple[Any, ...]]) -> Any:
    def expire(fut: asyncio.Future[Any], *args: Any) -> None:
        log.append(args)
        fut.set_exception(TimeoutError(*args))

    return expire


def _timers(loop: asyncio.AbstractEventLoop) -> int:
    return sum(1 for handle in getattr(loop, "_scheduled", ()) if not handle.cancelled())


async def test_each_future_expires_at_its_own_deadline_and_answered_ones_never() -> None:
    log: list[tuple[Any, ...]] = []
    deadlines = Deadlines(_expired(log))
    loop = asyncio.get_running_loop()
    late, early, answered = loop.create_future(), loop.create_future(), loop.create_future()
    started = loop.time()
    deadlines.add(late, 0.30, "late")
    deadlines.add(early, 0.10, "early")  # earlier than the armed timer: the timer moves
    deadlines.add(answered, 0.05, "answered")
    answered.set_result("ok")
    deadlines.discard(answered)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(early, 2)
    assert 0.09 <= loop.time() - started < 0.25
    assert not late.done()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(late, 2)
    assert loop.time() - started >= 0.29
    assert log == [("early",), ("late",)]
    assert len(deadlines) == 0


async def test_many_calls_share_one_timer_that_is_not_moved_for_later_deadlines() -> None:
    deadlines = Deadlines(_expired([]))
    loop = asyncio.get_running_loop()
    before = _timers(loop)
    futures = [loop.create_future() for _ in range(100)]
    for fut in futures:
        deadlines.add(fut, 30)
    assert _timers(loop) == before + 1
    for fut in futures:
        deadlines.discard(fut)
    assert len(deadlines) == 0


async def test_a_future_done_before_its_deadline_is_not_expired() -> None:
    log: list[tuple[Any, ...]] = []
    deadlines = Deadlines(_expired(log))
    fut = asyncio.get_running_loop().create_future()
    deadlines.add(fut, 0.01, "x")
    fut.cancel()  # done but not discarded: the timer leaves it alone
    await asyncio.sleep(0.05)
    assert log == []
    assert len(deadlines) == 0


def test_the_table_follows_the_loop_of_its_futures() -> None:
    log: list[tuple[Any, ...]] = []
    deadlines = Deadlines(_expired(log))

    async def one(name: str) -> None:
        fut = asyncio.get_running_loop().create_future()
        deadlines.add(fut, 0.02, name)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(fut, 2)

    asyncio.run(one("first"))
    asyncio.run(one("second"))  # a new loop: the old loop's timer and futures are dropped
    assert log == [("first",), ("second",)]
