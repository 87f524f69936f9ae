"""Property-based fuzzing of the Agent's notification handlers (issue 17, hostile input).

A real ``AsyncAgent`` connected to an in-process server, with a Computer in its office; each case
is handed to the Agent's python-socketio client the way its read loop hands a received event
(``AsyncClient._trigger_event``): every ``notify:*`` event and unknown ones, with malformed,
mistyped, huge, nested or binary data. No exception escapes, nothing is logged at ERROR, the cache
settles, and the Agent still works afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from typing import Any

import pytest
from hypothesis import given, seed

from smcp.agent import AsyncAgent
from smcp.core.events import NAMESPACE, NotifyEvent
from smcp.testing import hostile
from smcp.testing.inprocess import ErrorRecords, close_loop
from smcp.testing.server import TOKEN, running

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CASES = int(os.environ.get("HOSTILE_CASES", "10000"))
SEED = int(os.environ.get("HOSTILE_SEED", "17"))
NOTIFY = sorted(e.value for e in NotifyEvent)


class Recorder:
    """An application handler: records what it was told."""

    def __init__(self) -> None:
        self.seen = 0

    def on_enter_office(self, note: Any) -> None:
        self.seen += 1

    async def on_update_tool_list(self, note: Any) -> None:
        self.seen += 1

    def on_cache_updated(self, computer: str, view: Any) -> None:
        self.seen += 1


def test_agent_notification_handlers_fuzzed(capsys: pytest.CaptureFixture[str]) -> None:
    errors = ErrorRecords()
    logging.getLogger().addHandler(errors)
    loop = asyncio.new_event_loop()
    count = 0
    recorder = Recorder()
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    async def main() -> float:
        nonlocal count
        async with running() as smcp:
            await smcp.computer("comp1", "o1")
            agent = AsyncAgent(smcp.url, token=TOKEN, office="o1", handler=recorder, name="a1")
            async with agent:
                sio = agent._conn._sio
                assert sio is not None
                started = time.perf_counter()
                cases_strategy = hostile.batches(NOTIFY, others=hostile.UNKNOWN_NAMES)

                async def batch(cases: list[tuple[int, Any, tuple[Any, ...], bool]]) -> None:
                    for _, event, args, _ in cases:
                        async with asyncio.timeout(5):
                            await sio._trigger_event(event, NAMESPACE, *args)

                @seed(SEED)
                @hostile.fuzz_settings(CASES // 25)
                @given(cases_strategy)
                def fuzz(cases: list[tuple[int, Any, tuple[Any, ...], bool]]) -> None:
                    nonlocal count
                    future = asyncio.run_coroutine_threadsafe(batch(cases), loop)
                    future.result(30)
                    count += len(cases)

                while count < CASES:
                    await asyncio.to_thread(fuzz)
                elapsed = time.perf_counter() - started
                await agent.cache.wait_idle(30)
                # still working: the Computer is there and answers
                tools = await agent.get_tools("comp1")
                assert tools == []
                assert agent.connected
                return elapsed

    try:
        elapsed = loop.run_until_complete(main())
    finally:
        close_loop(loop)
        logging.getLogger().removeHandler(errors)
    rss_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert not errors.records, [f"{r.name}: {r.getMessage()}" for r in errors.records[:5]]
    assert recorder.seen > 0
    with capsys.disabled():
        print(
            f"\n[hostile] agent notifications: {count} cases in {elapsed:.1f} s (seed {SEED}), "
            f"max RSS {rss_start:.0f} -> {rss_end:.0f} MiB"
        )
    assert count >= CASES
    assert rss_end - rss_start < 256
