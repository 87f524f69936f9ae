"""Shared fixtures and hooks for the cross-process tests under ``e2e/``.

- points ``SMCP_TESTING_CACHE`` at ``<repo>/.e2e-cache`` (where the official venv is built) unless set;
- ``anyio_backend``: asyncio only;
- ``procs``: a :class:`smcp.testing.processes.ProcessManager` whose logs go to
  ``target/e2e/<sanitized node id>/`` and whose processes are always stopped at teardown;
- ``official_py``: the official a2c-smcp venv python (fails the test if it cannot be built; skips
  when ``SMCP_E2E_SKIP_OFFICIAL=1``);
- a report hook that appends the tail of every log of a failed test to its report.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from smcp.testing.official_env import CACHE_ENV

from .harness import (
    OfficialEnvError,
    ProcessManager,
    official_python,
    sanitize,
    skip_official_requested,
    tail,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault(CACHE_ENV, str(REPO_ROOT / ".e2e-cache"))

LOG_ROOT = REPO_ROOT / "target" / "e2e"
PROCS_KEY = pytest.StashKey[ProcessManager]()
TAIL_CHARS = 4000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def procs(request: pytest.FixtureRequest) -> Iterator[ProcessManager]:
    log_dir = LOG_ROOT / sanitize(request.node.nodeid)
    if log_dir.exists():
        shutil.rmtree(log_dir, ignore_errors=True)
    manager = ProcessManager(log_dir)
    request.node.stash[PROCS_KEY] = manager
    try:
        yield manager
    finally:
        manager.stop_all()


@pytest.fixture
def official_py() -> Path:
    if skip_official_requested():
        pytest.skip("SMCP_E2E_SKIP_OFFICIAL=1: the official a2c-smcp venv is not used in this run")
    try:
        return official_python()
    except OfficialEnvError as exc:
        pytest.fail(f"the official a2c-smcp venv is required and could not be built: {exc}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.failed:
        return
    manager = item.stash.get(PROCS_KEY, None)
    if manager is None:
        return
    for log in manager.logs():
        report.sections.append((f"process log {log.name} (tail; full: {log})", tail(log, TAIL_CHARS)))
