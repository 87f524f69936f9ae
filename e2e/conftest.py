"""Shared fixtures and hooks for the cross-process tests under ``e2e/``.

- puts the repository root on ``sys.path`` so ``from e2e.harness import ...`` works under
  ``--import-mode=importlib``;
- ``anyio_backend``: asyncio only;
- ``procs``: a :class:`e2e.harness.ProcessManager` whose logs go to
  ``target/e2e/<sanitized node id>/`` and whose processes are always stopped at teardown;
- ``official_py``: the official a2c-smcp venv python (fails the test if it cannot be built; skips
  when ``SMCP_E2E_SKIP_OFFICIAL=1``);
- a report hook that appends the tail of every log of a failed test to its report.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from e2e.harness import (  # noqa: E402
    OfficialEnvError,
    ProcessManager,
    official_python,
    sanitize,
    skip_official_requested,
    tail,
)

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
