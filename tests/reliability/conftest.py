"""Shared set-up of the reliability tests (issue 17): faults, hostile input, load.

- every test in this folder gets the ``reliability`` marker (``-m reliability`` runs the set);
- ``procs``: a :class:`ProcessManager` logging to ``target/reliability/<test>/``, stopped at teardown
  (a failed test's report gets the tail of every log);
- ``figure(requirement, value, unit, limit=None)``: records one measured figure; each test prints
  its own, and the run ends with a table of all of them (also written to
  ``target/reliability/figures.json``), so the issue note can list them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from smcp.testing.processes import ProcessManager, sanitize, tail

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_ROOT = REPO_ROOT / "target" / "reliability"
FIGURES_FILE = LOG_ROOT / "figures.json"
_PROCS = pytest.StashKey[ProcessManager]()
_KEY = "reliability_figure"

Figure = Callable[..., None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def procs(request: pytest.FixtureRequest) -> Iterator[ProcessManager]:
    log_dir = LOG_ROOT / sanitize(request.node.nodeid)
    if log_dir.exists():
        shutil.rmtree(log_dir, ignore_errors=True)
    manager = ProcessManager(log_dir)
    request.node.stash[_PROCS] = manager
    try:
        yield manager
    finally:
        manager.stop_all()


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Figure:
    """``figure(requirement, value, unit, limit=None)``: record and print one measured figure."""

    def record(
        requirement: str, value: float | str, unit: str = "", limit: float | str | None = None
    ) -> None:
        row = {"test": request.node.name, "requirement": requirement, "value": value, "unit": unit}
        if limit is not None:
            row["limit"] = limit
        request.node.user_properties.append((_KEY, json.dumps(row)))
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"FIGURE {requirement}: {shown} {unit}" + (f" (limit {limit})" if limit is not None else ""))

    return record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    manager = item.stash.get(_PROCS, None)
    if report.failed and manager is not None:
        for log in manager.logs():
            report.sections.append((f"process log {log.name} (tail; full: {log})", tail(log, 4000)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows: list[dict[str, Any]] = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key == _KEY:
                    rows.append(json.loads(value))
    if not rows:
        return
    rows.sort(key=lambda r: (r["test"], r["requirement"]))
    terminalreporter.section("reliability figures")
    for r in rows:
        value = f"{r['value']:.3f}" if isinstance(r["value"], float) else str(r["value"])
        limit = f"  (limit {r['limit']})" if "limit" in r else ""
        terminalreporter.write_line(f"{r['test']}: {r['requirement']} = {value} {r['unit']}{limit}")
    try:
        LOG_ROOT.mkdir(parents=True, exist_ok=True)
        FIGURES_FILE.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    except OSError:
        pass
