"""Property-based fuzzing of the Computer link's inbound handlers (issue 17, hostile input).

A real ``Computer`` (a skill package, a blob spool, an upload landing root) behind a real
``ComputerLink``; each case goes through python-socketio's client dispatch
(``AsyncClient._trigger_event``, what the read loop calls for every event) with what a broken or
hostile server may relay: every ``client:*`` event with malformed, mistyped, huge, nested or binary
data, unknown events and ``notify:tool_call_cancel``. Every request gets a well-formed answer within
its deadline, nothing is logged at ERROR, nothing is written outside the Computer's roots.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, seed

from smcp.computer import Computer, ComputerLink
from smcp.core.events import NAMESPACE, ClientEvent
from smcp.testing import hostile
from smcp.testing.inprocess import ErrorRecords, close_loop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CASES = int(os.environ.get("HOSTILE_CASES", "10000"))
SEED = int(os.environ.get("HOSTILE_SEED", "17"))
DEADLINE = 5.0

SKILL_MD = "---\nname: pdf-tools\ndescription: Work with PDF files\n---\n# PDF tools\n"
EVENTS = sorted({*(e.value for e in ClientEvent), "notify:tool_call_cancel"})
#: Event names are the Computer's and unknown strings: a server can make a python-socketio client
#: run its own connect/disconnect handlers with events of those names, or break its read loop with
#: a name that is not a string, but our server relays only the table's client:* events.


def well_formed(event: Any, answer: Any) -> bool:
    if event not in EVENTS or not event.startswith("client:"):
        return answer is None  # not a request the Computer serves (python-socketio drops it)
    if not isinstance(answer, dict):
        return False
    if event == ClientEvent.TOOL_CALL and "code" not in answer:
        return isinstance(answer.get("content"), list) and isinstance(answer.get("isError"), bool)
    if "code" in answer:
        return isinstance(answer["code"], int) and isinstance(answer.get("message"), str)
    return True


def files_under(root: Path) -> set[Path]:
    return {Path(d) / f for d, _, names in os.walk(root) for f in names} | {
        Path(d) for d, _, _ in os.walk(root)
    }


def test_computer_link_fuzzed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "skills"
    pkg = home / "user" / "pdf-tools"
    pkg.mkdir(parents=True)
    (pkg / "SKILL.md").write_text(SKILL_MD)
    (pkg / "notes.txt").write_text("notes")
    (tmp_path / "outside.txt").write_text("outside")
    (pkg / "escape.txt").symlink_to(tmp_path / "outside.txt")
    roots = [home, tmp_path / "spool", tmp_path / "landing"]
    before = files_under(tmp_path)

    errors = ErrorRecords()
    logging.getLogger().addHandler(errors)
    loop = asyncio.new_event_loop()
    computer = Computer(
        "comp1", skill_home=home, spool_dir=tmp_path / "spool", landing_root=tmp_path / "landing"
    )
    loop.run_until_complete(computer.__aenter__())
    loop.run_until_complete(computer.refresh_skills())
    link = ComputerLink(computer, "http://127.0.0.1:9")
    sio = link.sio
    count = 0
    started = time.perf_counter()
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    async def one(event: Any, args: tuple[Any, ...]) -> None:
        async with asyncio.timeout(DEADLINE):
            answer = await sio._trigger_event(event, NAMESPACE, *args)
        assert well_formed(event, answer), f"{event!r} answered with {answer!r}"

    async def batch(cases: list[tuple[int, Any, tuple[Any, ...], bool]]) -> None:
        await asyncio.gather(*(one(event, args) for _, event, args, _ in cases))

    cases_strategy = hostile.batches(EVENTS, others=hostile.UNKNOWN_NAMES)

    @seed(SEED)
    @hostile.fuzz_settings(CASES // 25)
    @given(cases_strategy)
    def fuzz(cases: list[tuple[int, Any, tuple[Any, ...], bool]]) -> None:
        nonlocal count
        loop.run_until_complete(batch(cases))
        count += len(cases)

    try:
        while count < CASES:
            fuzz()
        elapsed = time.perf_counter() - started
        # bounded: no upload left open beyond the store's own cap, no task left behind
        uploads = computer._uploads
        assert len(uploads._sessions) <= uploads.max_concurrent
        assert not link._tasks
    finally:
        loop.run_until_complete(computer.__aexit__(None, None, None))
        close_loop(loop)
        logging.getLogger().removeHandler(errors)
    rss_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert not errors.records, [f"{r.name}: {r.getMessage()}" for r in errors.records[:5]]
    # nothing was written outside the Computer's roots
    after = files_under(tmp_path)
    stray = {p for p in after - before if not any(p == r or r in p.parents for r in roots)}
    assert not stray, stray
    with capsys.disabled():
        print(
            f"\n[hostile] computer link: {count} cases in {elapsed:.1f} s (seed {SEED}), "
            f"max RSS {rss_start:.0f} -> {rss_end:.0f} MiB"
        )
    assert count >= CASES
    assert rss_end - rss_start < 256
